"""Rebuild a PyTorch training checkpoint from the shipped plate CRNN ONNX, so training can continue from it.

The ONNX export folds each BatchNorm into its convolution, so the running statistics are gone. They are
re-estimated: the folded model is loaded with identity BatchNorms (exactly the shipped function), the statistics
of every convolution's output are measured over rendered plates, and each BatchNorm is set to
``gamma = sqrt(var + eps)``, ``beta = mean + folded_bias``, ``running = (mean, var)``. In eval mode that is the
shipped function again (checked against onnxruntime before saving); in train mode the batch statistics are close
to the running ones, so fine-tuning starts where the shipped model is.

    /tmp/train-venv/bin/python tools/plates/onnx_to_checkpoint.py \
        src/citydata/vision/plates/data/plate_crnn.onnx /tmp/crnn/from_onnx.pt
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import PlateCRNN
from train_crnn import CHARSET, PROVINCES, preprocess, synth


def _reorder_gates(a: np.ndarray, hidden: int) -> np.ndarray:
    """ONNX GRU gate order (z, r, h) -> PyTorch (r, z, n) along axis 0."""
    z, r, h = a[:hidden], a[hidden:2 * hidden], a[2 * hidden:]
    return np.concatenate([r, z, h], axis=0)


def load_folded(model: PlateCRNN, onnx_path: Path) -> None:
    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [m for m in list(model.features.modules()) + list(model.collapse.modules()) if isinstance(m, nn.Conv2d)]
    bns = [m for m in list(model.features.modules()) + list(model.collapse.modules())
           if isinstance(m, nn.BatchNorm2d)]
    folded = [n for n in graph.node if n.op_type == "Conv" and n.input[1].startswith("onnx::Conv_")]
    if len(folded) != len(convs) or len(bns) != len(convs):
        raise SystemExit(f"layout mismatch: {len(folded)} folded convs in the ONNX, {len(convs)} in the model")
    sd = model.state_dict()
    with torch.no_grad():
        for conv, bn, node in zip(convs, bns, folded, strict=True):
            conv.weight.copy_(torch.from_numpy(init[node.input[1]]))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(init[node.input[2]]))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        gru = next(n for n in graph.node if n.op_type == "GRU")
        w, r, b = (init[gru.input[1]], init[gru.input[2]], init[gru.input[3]])
        hidden = model.rnn.hidden_size
        for d, suffix in enumerate(("", "_reverse")):
            getattr(model.rnn, f"weight_ih_l0{suffix}").copy_(torch.from_numpy(_reorder_gates(w[d], hidden)))
            getattr(model.rnn, f"weight_hh_l0{suffix}").copy_(torch.from_numpy(_reorder_gates(r[d], hidden)))
            getattr(model.rnn, f"bias_ih_l0{suffix}").copy_(torch.from_numpy(_reorder_gates(b[d][:3 * hidden], hidden)))
            getattr(model.rnn, f"bias_hh_l0{suffix}").copy_(torch.from_numpy(_reorder_gates(b[d][3 * hidden:], hidden)))
        matmul = next(n for n in graph.node if n.op_type == "MatMul")
        model.seq_out.weight.copy_(torch.from_numpy(init[matmul.input[1]].T.copy()))
        model.seq_out.bias.copy_(torch.from_numpy(init["seq_out.bias"]))
        for name in ("prov.0.weight", "prov.0.bias", "prov.5.weight", "prov.5.bias", "prov.7.weight", "prov.7.bias"):
            sd[name].copy_(torch.from_numpy(init[name]))


def restore_batchnorm(model: PlateCRNN, x: torch.Tensor) -> None:
    bns = [m for m in list(model.features.modules()) + list(model.collapse.modules())
           if isinstance(m, nn.BatchNorm2d)]
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(i: int):  # type: ignore[no-untyped-def]
        def record(_m, inputs, _out) -> None:  # type: ignore[no-untyped-def]
            t = inputs[0]
            stats[i] = (t.mean(dim=(0, 2, 3)), t.var(dim=(0, 2, 3), unbiased=False))
        return record

    handles = [bn.register_forward_hook(hook(i)) for i, bn in enumerate(bns)]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    with torch.no_grad():
        for i, bn in enumerate(bns):
            mean, var = stats[i]
            folded_bias = bn.bias.clone()
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.copy_(mean + folded_bias)


def main() -> None:
    onnx_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(2)
    model = PlateCRNN(len(CHARSET), len(PROVINCES))
    load_folded(model, onnx_path)
    rng = random.Random(424242)
    fonts = synth.packaged_fonts()
    x = torch.from_numpy(np.stack([preprocess(synth.random_plate(rng, fonts).image_bgr) for _ in range(1500)]))
    restore_batchnorm(model, x)
    model.eval()
    with torch.no_grad():
        seq, prov = model(x[:64])
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref_seq, ref_prov = sess.run(None, {"image": x[:64].numpy()})
    err = max(float(np.abs(seq.numpy() - ref_seq).max()), float(np.abs(prov.numpy() - ref_prov).max()))
    print(f"max |torch - onnx| over 64 plates: {err:.2e}")
    if err > 1e-3:
        raise SystemExit("the rebuilt model does not reproduce the ONNX model")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "step": 0}, out)
    print("saved", out)


if __name__ == "__main__":
    main()
