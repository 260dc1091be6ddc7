"""Drop-in ``torch.nn`` modules whose forward pass runs through :mod:`tndiag.functional`.

Each class subclasses its torch counterpart, so constructor arguments, parameters,
initialisation, ``state_dict`` keys and ``repr`` are torch's; only the computation is a
compiled tensor-network diagram. Autograd flows through the program's einsums.

>>> import torch
>>> theirs = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
>>> ours = Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
>>> _ = ours.load_state_dict(theirs.state_dict())
>>> x = torch.randn(2, 4, 9, 9)
>>> torch.allclose(ours(x), theirs(x), atol=1e-5)
True
"""

from __future__ import annotations

from typing import List, Optional

import torch

from tndiag import functional as F

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "Unfold", "Fold"]


class _TndiagConv:
    """Replaces torch's ``_conv_forward`` (called by ``forward``) with ``functional.conv``."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,
                      bias: Optional[torch.Tensor]) -> torch.Tensor:
        if self.padding_mode != "zeros":  # type: ignore[attr-defined]
            # As torch does: pad explicitly with the chosen mode, then convolve unpadded.
            input = torch.nn.functional.pad(
                input, self._reversed_padding_repeated_twice,  # type: ignore[attr-defined]
                mode=self.padding_mode)  # type: ignore[attr-defined]
            padding = 0
        else:
            padding = self.padding  # type: ignore[attr-defined]
        return F.conv(input, weight, bias, self.stride, padding,  # type: ignore[attr-defined]
                      self.dilation, self.groups)  # type: ignore[attr-defined]


class _TndiagConvTranspose:
    """Replaces torch's transposed-convolution ``forward`` (``output_size`` included)."""

    _ndim: int

    def forward(self, input: torch.Tensor,
                output_size: Optional[List[int]] = None) -> torch.Tensor:
        output_padding = self._output_padding(  # type: ignore[attr-defined]
            input, output_size, self.stride, self.padding,  # type: ignore[attr-defined]
            self.kernel_size, self._ndim, self.dilation)  # type: ignore[attr-defined]
        return F.conv_transpose(input, self.weight, self.bias,  # type: ignore[attr-defined]
                                self.stride, self.padding,  # type: ignore[attr-defined]
                                output_padding, self.groups,  # type: ignore[attr-defined]
                                self.dilation)  # type: ignore[attr-defined]


class Conv1d(_TndiagConv, torch.nn.Conv1d):
    """``torch.nn.Conv1d`` computed by tndiag (same arguments, parameters and state dict).

    >>> Conv1d(2, 3, 5, padding="same", padding_mode="circular")(torch.randn(4, 2, 9)).shape
    torch.Size([4, 3, 9])
    """


class Conv2d(_TndiagConv, torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by tndiag (same arguments, parameters and state dict).

    >>> Conv2d(4, 6, 3, stride=2, groups=2)(torch.randn(1, 4, 9, 9)).shape
    torch.Size([1, 6, 4, 4])
    """


class Conv3d(_TndiagConv, torch.nn.Conv3d):
    """``torch.nn.Conv3d`` computed by tndiag (same arguments, parameters and state dict).

    >>> Conv3d(2, 2, (1, 2, 3), bias=False)(torch.randn(2, 4, 5, 6)).shape
    torch.Size([2, 4, 4, 4])
    """


class ConvTranspose1d(_TndiagConvTranspose, torch.nn.ConvTranspose1d):
    """``torch.nn.ConvTranspose1d`` computed by tndiag, ``forward(input, output_size=None)``.

    >>> ConvTranspose1d(2, 3, 3, stride=2)(torch.randn(1, 2, 5), output_size=[12]).shape
    torch.Size([1, 3, 12])
    """

    _ndim = 1


class ConvTranspose2d(_TndiagConvTranspose, torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` computed by tndiag, ``forward(input, output_size=None)``.

    >>> ConvTranspose2d(4, 2, 3, stride=2, groups=2, output_padding=1)(
    ...     torch.randn(1, 4, 3, 3)).shape
    torch.Size([1, 2, 8, 8])
    """

    _ndim = 2


class ConvTranspose3d(_TndiagConvTranspose, torch.nn.ConvTranspose3d):
    """``torch.nn.ConvTranspose3d`` computed by tndiag, ``forward(input, output_size=None)``.

    >>> ConvTranspose3d(2, 1, 2, stride=(1, 2, 1))(torch.randn(1, 2, 3, 3, 3)).shape
    torch.Size([1, 1, 4, 6, 4])
    """

    _ndim = 3


class Unfold(torch.nn.Unfold):
    """``torch.nn.Unfold`` computed by tndiag; tuple arguments of any length give N-d unfold.

    >>> Unfold((2, 2, 2))(torch.randn(1, 3, 4, 4, 4)).shape
    torch.Size([1, 24, 27])
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(torch.nn.Fold):
    """``torch.nn.Fold`` computed by tndiag; tuple arguments of any length give N-d fold.

    >>> Fold((10,), (3,))(torch.randn(2, 6, 8)).shape
    torch.Size([2, 2, 10])
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)
