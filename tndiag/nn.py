"""Drop-in ``torch.nn`` modules whose forward pass runs through :mod:`tndiag.functional`.

Each class subclasses its torch counterpart, so constructor arguments, parameters,
initialisation, ``state_dict`` keys and ``repr`` are torch's; only the computation is a
compiled tensor-network diagram. Autograd flows through the program's einsums. The
constructors check their arguments first (an invalid one raises
:class:`~tndiag.errors.InvalidArgumentError` naming it, where torch would accept some and
fail later, e.g. ``stride=0``).

>>> import torch
>>> theirs = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
>>> ours = Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
>>> _ = ours.load_state_dict(theirs.state_dict())
>>> x = torch.randn(2, 4, 9, 9)
>>> torch.allclose(ours(x), theirs(x), atol=1e-5)
True
"""

from __future__ import annotations

import inspect
from typing import Any, List, Optional

import torch

from tndiag import functional as F
from tndiag.errors import InvalidArgumentError
from tndiag.functional._common import hashable
from tndiag.ops.common import check_groups
from tndiag.ops.hyper import check_flag, check_int, check_output_padding, conv_spec, ntuple

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "Unfold", "Fold"]


def _torch_base(cls: type) -> type:
    return next(c for c in cls.__mro__ if c.__module__.startswith("torch.nn"))


def _checked_init(module: torch.nn.Module, transposed: bool, ndim: int, args: Any,
                  kwargs: Any) -> None:
    """Validate a convolution module's arguments with tndiag's rules, then run torch's init."""
    init = _torch_base(type(module)).__dict__["__init__"]
    a = inspect.signature(init).bind(module, *args, **kwargs)
    a.apply_defaults()
    v = a.arguments
    for name in ("in_channels", "out_channels"):
        check_int(v[name], name, 0)
    groups = check_groups(v["groups"])
    for name in ("in_channels", "out_channels"):
        if v[name] % groups:
            raise InvalidArgumentError(f"groups={groups} must divide {name}={v[name]}")
    kernel = ntuple(v["kernel_size"], ndim, "kernel_size", 1)
    padding = v["padding"]
    if transposed and isinstance(padding, str):
        raise InvalidArgumentError(f"padding for a transposed convolution must be an int or "
                                   f"a tuple, got {padding!r}")
    spec = conv_spec(ndim, kernel, v["stride"], padding, v["dilation"])
    if transposed:
        check_output_padding(v["output_padding"], spec)
    check_flag(v["bias"], "bias")
    try:
        init(module, *args, **kwargs)
    except (ValueError, TypeError, RuntimeError) as err:
        raise InvalidArgumentError(f"{type(module).__name__}: {err}") from None


class _TndiagConv:
    """Replaces torch's ``_conv_forward`` (called by ``forward``) with ``functional.conv``."""

    _ndim: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _checked_init(self, False, self._ndim, args, kwargs)  # type: ignore[arg-type]

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _checked_init(self, True, self._ndim, args, kwargs)  # type: ignore[arg-type]

    def forward(self, input: torch.Tensor,
                output_size: Optional[List[int]] = None) -> torch.Tensor:
        try:
            output_padding = self._output_padding(  # type: ignore[attr-defined]
                input, output_size, self.stride, self.padding,  # type: ignore[attr-defined]
                self.kernel_size, self._ndim, self.dilation)  # type: ignore[attr-defined]
        except (ValueError, TypeError, AttributeError) as err:  # torch's check of output_size
            raise InvalidArgumentError(f"output_size={output_size!r}: {err}") from None
        return F.conv_transpose(input, self.weight, self.bias,  # type: ignore[attr-defined]
                                self.stride, self.padding,  # type: ignore[attr-defined]
                                output_padding, self.groups,  # type: ignore[attr-defined]
                                self.dilation)  # type: ignore[attr-defined]


class Conv1d(_TndiagConv, torch.nn.Conv1d):
    """``torch.nn.Conv1d`` computed by tndiag (same arguments, parameters and state dict).

    >>> Conv1d(2, 3, 5, padding="same", padding_mode="circular")(torch.randn(4, 2, 9)).shape
    torch.Size([4, 3, 9])
    """

    _ndim = 1


class Conv2d(_TndiagConv, torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by tndiag (same arguments, parameters and state dict).

    >>> Conv2d(4, 6, 3, stride=2, groups=2)(torch.randn(1, 4, 9, 9)).shape
    torch.Size([1, 6, 4, 4])
    """

    _ndim = 2


class Conv3d(_TndiagConv, torch.nn.Conv3d):
    """``torch.nn.Conv3d`` computed by tndiag (same arguments, parameters and state dict).

    >>> Conv3d(2, 2, (1, 2, 3), bias=False)(torch.randn(2, 4, 5, 6)).shape
    torch.Size([2, 4, 4, 4])
    """

    _ndim = 3


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


def _check_block_args(**args: Any) -> None:
    """Unfold/Fold arguments: positive ints or sequences of them (the rank is fixed later)."""
    for name, value in args.items():
        key = hashable(value, name)
        if isinstance(key, str):
            raise InvalidArgumentError(f"{name} must be an int or a sequence of ints, "
                                       f"got {value!r}")
        ntuple(key, len(key) if isinstance(key, tuple) else 1, name, 1)


class Unfold(torch.nn.Unfold):
    """``torch.nn.Unfold`` computed by tndiag; tuple arguments of any length give N-d unfold.

    >>> Unfold((2, 2, 2))(torch.randn(1, 3, 4, 4, 4)).shape
    torch.Size([1, 24, 27])
    """

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
                 stride: Any = 1) -> None:
        _check_block_args(kernel_size=kernel_size, dilation=dilation, stride=stride)
        hashable(padding, "padding")
        super().__init__(kernel_size, dilation, padding, stride)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(torch.nn.Fold):
    """``torch.nn.Fold`` computed by tndiag; tuple arguments of any length give N-d fold.

    >>> Fold((10,), (3,))(torch.randn(2, 6, 8)).shape
    torch.Size([2, 2, 10])
    """

    def __init__(self, output_size: Any, kernel_size: Any, dilation: Any = 1,
                 padding: Any = 0, stride: Any = 1) -> None:
        _check_block_args(output_size=output_size, kernel_size=kernel_size, dilation=dilation,
                          stride=stride)
        hashable(padding, "padding")
        super().__init__(output_size, kernel_size, dilation, padding, stride)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)
