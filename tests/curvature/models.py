"""Small float64 models around one layer of every kind, for the curvature tests."""

from __future__ import annotations

import math

import torch
from torch import nn


class Seq(nn.Module):
    """``Linear`` over a sequence ``[N, T, d]``, then a classifier over ``T·h``."""

    def __init__(self, T: int = 3, d: int = 4, h: int = 3, out: int = 3, bias: bool = True):
        super().__init__()
        self.inner = nn.Linear(d, h, bias=bias)
        self.head = nn.Linear(T * h, out)

    def forward(self, x):
        return self.head(torch.tanh(self.inner(x)).flatten(1))


def around(layer: nn.Module, in_shape, out: int = 3) -> nn.Module:
    """``layer → tanh → flatten → Linear(·, out)``, in float64."""
    with torch.no_grad():
        y = layer.double()(torch.zeros(1, *in_shape, dtype=torch.float64))
    return nn.Sequential(layer, nn.Tanh(), nn.Flatten(),
                         nn.Linear(math.prod(y.shape[1:]), out)).double()


# name → (layer factory, per-sample input shape)
GRID = {
    "conv1d-s2-p1": (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1), (2, 7)),
    "conv1d-nobias-dil2": (lambda: nn.Conv1d(2, 4, 2, dilation=2, bias=False), (2, 6)),
    "conv2d-g2-dil2": (lambda: nn.Conv2d(4, 4, 3, dilation=2, padding=1, groups=2), (4, 5, 5)),
    "conv2d-depthwise": (lambda: nn.Conv2d(3, 6, 3, groups=3, stride=2), (3, 5, 6)),
    "conv2d-same-even": (lambda: nn.Conv2d(2, 3, (2, 4), padding="same"), (2, 4, 5)),
    "conv2d-reflect": (lambda: nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"),
                       (2, 4, 4)),
    "conv2d-replicate-same": (lambda: nn.Conv2d(2, 2, 2, padding="same",
                                                padding_mode="replicate"), (2, 3, 4)),
    "conv2d-circular": (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular",
                                          stride=(1, 2)), (2, 4, 5)),
    "conv3d": (lambda: nn.Conv3d(2, 2, (2, 1, 2), stride=(1, 2, 1), padding=(0, 1, 1)),
               (2, 3, 3, 2)),
    "convT1d-s2-op1": (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1), (2, 4)),
    "convT2d-g2-dil2": (lambda: nn.ConvTranspose2d(4, 2, 2, groups=2, dilation=2, padding=1),
                        (4, 3, 3)),
    "convT3d-nobias": (lambda: nn.ConvTranspose3d(2, 2, 2, stride=(2, 1, 1), bias=False),
                       (2, 2, 2, 2)),
}


def grid_model(name: str) -> nn.Module:
    make, shape = GRID[name]
    torch.manual_seed(sum(map(ord, name)))
    return around(make(), shape)


def inputs_for(shape, N: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, *shape, dtype=torch.float64, generator=g)


def targets_for(loss_fn, N: int = 3, out: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        return torch.randint(0, out, (N,), generator=g)
    return torch.randn(N, out, dtype=torch.float64, generator=g)
