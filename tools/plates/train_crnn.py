"""Train the plate CRNN on synthetic Thai plates rendered on the fly, time-boxed, and export it to ONNX.

Runs in a separate training environment (torch is never a runtime dependency of CityData):

    python3 -m venv /tmp/cd/train-venv
    /tmp/cd/train-venv/bin/pip install torch==2.13.0 numpy pillow opencv-python-headless onnx
    nohup /tmp/cd/train-venv/bin/python tools/plates/train_crnn.py --minutes 40 --fonts /tmp/fonts/tlwg \\
        --out /tmp/cd/crnn > /tmp/cd/crnn/train.log 2>&1 &

Fonts: any directory of Thai .ttf files (the TLWG fonts of Debian's fonts-thai-tlwg); without --fonts the four
fonts shipped in the package are used. ``--hold-out Sawasdee`` keeps a font family out of training so the
evaluation can report accuracy on a font never seen. The learning rate follows a cosine over the time budget;
a checkpoint is written every few minutes and the best one (validation exact-plate accuracy) is exported to
``<out>/plate_crnn.onnx`` (``export_onnx.py`` exports any other checkpoint).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

HERE = Path(__file__).resolve().parent
PLATES_PKG = HERE.parents[1] / "src" / "citydata" / "vision" / "plates"
sys.path.insert(0, str(HERE))
from model import INPUT_H, INPUT_W, PlateCRNN  # noqa: E402


def load_synth():  # type: ignore[no-untyped-def]
    """Load synth.py by path: the training environment does not install CityData."""
    spec = importlib.util.spec_from_file_location("plate_synth", PLATES_PKG / "synth.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["plate_synth"] = mod
    spec.loader.exec_module(mod)
    return mod


synth = load_synth()
CHARSET = synth.CONSONANTS + synth.DIGITS  # index + 1 is the CTC class; 0 is the blank
CHAR_INDEX = {c: i + 1 for i, c in enumerate(CHARSET)}
PROVINCES = list(synth.PROVINCES)


def preprocess(image_bgr: np.ndarray) -> np.ndarray:
    """BGR crop -> float32 (1, INPUT_H, INPUT_W) in [-1, 1]; must match citydata.vision.plates.crnn.preprocess."""
    import cv2

    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
    return ((grey.astype(np.float32) / 127.5) - 1.0)[None]


class PlateStream(IterableDataset):  # type: ignore[type-arg]
    def __init__(self, fonts: list[Path], seed: int) -> None:
        self.fonts, self.seed = fonts, seed

    def __iter__(self):  # type: ignore[no-untyped-def]
        info = torch.utils.data.get_worker_info()
        rng = random.Random(self.seed + (info.id if info else 0) * 1_000_003)
        while True:
            p = synth.random_plate(rng, self.fonts, strength=rng.uniform(0.3, 1.2))
            yield preprocess(p.image_bgr), [CHAR_INDEX[c] for c in p.registration], PROVINCES.index(p.province)


def collate(batch):  # type: ignore[no-untyped-def]
    x = torch.from_numpy(np.stack([b[0] for b in batch]))
    targets = torch.tensor([i for b in batch for i in b[1]], dtype=torch.long)
    lengths = torch.tensor([len(b[1]) for b in batch], dtype=torch.long)
    prov = torch.tensor([b[2] for b in batch], dtype=torch.long)
    return x, targets, lengths, prov


def greedy_decode(seq: np.ndarray) -> list[str]:
    out = []
    for row in seq.argmax(-1):
        chars, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                chars.append(CHARSET[k - 1])
            prev = k
        out.append("".join(chars))
    return out


def make_val(fonts: list[Path], n: int, seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    plates = [synth.random_plate(rng, fonts) for _ in range(n)]
    x = torch.from_numpy(np.stack([preprocess(p.image_bgr) for p in plates]))
    return x, [p.registration for p in plates], [p.province for p in plates]


def evaluate(model: nn.Module, val) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    model.eval()
    with torch.no_grad():
        seq, prov = model(val[0])
    model.train()
    texts = greedy_decode(seq.numpy())
    provs = [PROVINCES[i] for i in prov.argmax(-1).numpy()]
    reg_ok = [t == r for t, r in zip(texts, val[1], strict=True)]
    prov_ok = [p == q for p, q in zip(provs, val[2], strict=True)]
    both = float(np.mean([a and b for a, b in zip(reg_ok, prov_ok, strict=True)]))
    return float(np.mean(reg_ok)), float(np.mean(prov_ok)), both


def export_onnx(model: nn.Module, path: Path) -> None:
    model.eval()
    dummy = torch.zeros(1, 1, INPUT_H, INPUT_W)
    torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=["seq", "province"],
                      dynamic_axes={"image": {0: "n"}, "seq": {0: "n"}, "province": {0: "n"}}, opset_version=17,
                      dynamo=False)
    meta = {"charset": CHARSET, "provinces": PROVINCES, "input_h": INPUT_H, "input_w": INPUT_W,
            "normalise": "grey/127.5-1", "blank": 0}
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--fonts", type=Path, default=None)
    ap.add_argument("--hold-out", default="Sawasdee", help="font family kept out of training")
    ap.add_argument("--out", type=Path, default=Path("/tmp/cd/crnn"))
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--resume", type=Path, default=None)
    ap.add_argument("--val", type=int, default=384, help="validation plates (packaged fonts) for picking the best")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fonts:
        fonts = sorted(p for p in args.fonts.glob("*.ttf")
                       if "Oblique" not in p.name and "Italic" not in p.name and not p.name.startswith(args.hold_out))
    else:
        fonts = synth.packaged_fonts()
    print("fonts:", [f.name for f in fonts], flush=True)
    model = PlateCRNN(len(CHARSET), len(PROVINCES))
    if args.resume:
        model.load_state_dict(torch.load(args.resume)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    ce = nn.CrossEntropyLoss(label_smoothing=0.05)
    loader = DataLoader(PlateStream(fonts, args.seed), batch_size=args.batch, num_workers=args.workers,
                        collate_fn=collate, prefetch_factor=4 if args.workers else None)
    val = make_val(synth.packaged_fonts(), args.val, seed=999_001)
    budget = args.minutes * 60
    start = last_eval = time.monotonic()
    best, step, run_loss = -1.0, 0, 0.0
    for x, targets, lengths, prov in loader:
        frac = (time.monotonic() - start) / budget
        if frac >= 1:
            break
        lr = args.lr * min(1.0, step / 200 + 0.05) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        seq, prov_logits = model(x)
        t = seq.shape[1]
        loss = ctc(seq.permute(1, 0, 2), targets, torch.full((x.shape[0],), t, dtype=torch.long), lengths)
        loss = loss + ce(prov_logits, prov)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            print(f"step {step} t={time.monotonic() - start:.0f}s lr={lr:.5f} loss={run_loss:.3f}", flush=True)
        if time.monotonic() - last_eval > 150:
            last_eval = time.monotonic()
            reg, pv, both = evaluate(model, val)
            print(f"EVAL step {step} reg={reg:.3f} province={pv:.3f} both={both:.3f}", flush=True)
            torch.save({"model": model.state_dict(), "step": step}, args.out / "last.pt")
            if both >= best:
                best = both
                torch.save({"model": model.state_dict(), "step": step}, args.out / "best.pt")
    reg, pv, both = evaluate(model, val)
    print(f"FINAL step {step} reg={reg:.3f} province={pv:.3f} both={both:.3f}", flush=True)
    torch.save({"model": model.state_dict(), "step": step}, args.out / "last.pt")
    if both >= best:
        torch.save({"model": model.state_dict(), "step": step}, args.out / "best.pt")
    model.load_state_dict(torch.load(args.out / "best.pt")["model"])
    export_onnx(model, args.out / "plate_crnn.onnx")
    print("exported", args.out / "plate_crnn.onnx", flush=True)


if __name__ == "__main__":
    main()
