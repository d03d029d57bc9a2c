"""Export a training checkpoint of the plate CRNN to ONNX (+ its .json metadata), e.g. to ship an interim model.

    /tmp/train-venv/bin/python tools/plates/export_onnx.py /tmp/crnn/best.pt \
        src/citydata/vision/plates/data/plate_crnn.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import PlateCRNN
from train_crnn import CHARSET, PROVINCES, export_onnx


def main() -> None:
    ckpt, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    model = PlateCRNN(len(CHARSET), len(PROVINCES))
    model.load_state_dict(torch.load(ckpt)["model"])
    export_onnx(model, out)
    print("exported", out, "from step", torch.load(ckpt)["step"])


if __name__ == "__main__":
    main()
