"""The plate CRNN (PyTorch, training only): one CNN over the whole two-line plate crop, two heads.

- ``seq``: a bidirectional GRU over the feature columns, trained with CTC to read the registration line
  (Thai consonants and digits);
- ``province``: a classifier over a coarse grid of the same features, one score per name of
  ``citydata.vision.plates.provinces.PROVINCES`` (a 77-way choice is sturdier than spelling the small
  bottom line letter by letter).

Input: grey crop resized to 48x112, scaled to [-1, 1]. Output ``seq`` is (N, T=28, C) log-probabilities with
the CTC blank at index 0; ``province`` is (N, 77) logits.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_H, INPUT_W = 48, 112


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlateCRNN(nn.Module):
    def __init__(self, n_chars: int, n_provinces: int, channels: tuple[int, int, int, int] = (16, 32, 48, 64)) -> None:
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            _block(1, c[0]), nn.MaxPool2d(2),  # 24x56
            _block(c[0], c[1]), nn.MaxPool2d(2),  # 12x28
            _block(c[1], c[2]), _block(c[2], c[2]), nn.MaxPool2d((2, 1)),  # 6x28
            _block(c[2], c[3]), _block(c[3], c[3]), nn.MaxPool2d((2, 1)),  # 3x28
        )
        self.collapse = nn.Sequential(nn.Conv2d(c[3], 128, (3, 1), bias=False), nn.BatchNorm2d(128),
                                      nn.ReLU(inplace=True))
        self.rnn = nn.GRU(128, 96, bidirectional=True, batch_first=True)
        self.seq_out = nn.Linear(192, n_chars + 1)
        self.prov = nn.Sequential(
            nn.Conv2d(c[3], 64, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((3, 7)), nn.Flatten(),
            nn.Dropout(0.2), nn.Linear(64 * 21, 256), nn.ReLU(inplace=True), nn.Linear(256, n_provinces),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        s = self.collapse(f).squeeze(2).permute(0, 2, 1)  # N, T, 128
        s, _ = self.rnn(s)
        seq = self.seq_out(s).log_softmax(-1)
        return seq, self.prov(f)
