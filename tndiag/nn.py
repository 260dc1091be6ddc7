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

**Tensor dropout.** ``Conv1d/2d/3d(..., grad_keep=p, grad_sample="spatial"|"channel")``
compute the exact output but save only a random ``p``-fraction of the input's slices
(spatial rows, or input channels) for backward; the input and bias gradients stay exact,
the weight gradient is the unbiased estimate of :func:`tndiag.functional.conv_weight_vjp`.
Sampling happens only in training mode with autograd recording and the weight requiring a
gradient; otherwise (and always for ``grad_keep=1.0``) the module is the plain one. The
attribute ``grad_generator`` (a :class:`torch.Generator` or None) draws the slices.
:func:`tensor_dropout` switches a whole model, :func:`restore` switches it back.
"""

from __future__ import annotations

import inspect
from typing import Any, List, Optional, Type

import torch

from tndiag import functional as F
from tndiag.errors import InvalidArgumentError
from tndiag.functional._common import hashable, lowerings_for
from tndiag.functional.dropout import (
    Draw,
    check_keep,
    check_sample,
    draw,
    kept_input,
    weight_vjp_from_kept,
)
from tndiag.ops.common import check_groups
from tndiag.ops.hyper import check_flag, check_int, check_output_padding, conv_spec, ntuple

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "Unfold", "Fold", "tensor_dropout", "restore"]

#: The sample modes a module can use (chosen before ``grad_output`` exists).
MODULE_SAMPLES = ("spatial", "channel")


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


class _DropoutConv(torch.autograd.Function):
    """Exact forward; saves only the kept slices of the input; estimated weight gradient."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor], hyper: tuple, keep: float, sample: str,
                generator: Optional[torch.Generator]) -> torch.Tensor:
        d = draw(sample, tuple(input.shape), hyper[3], keep, generator)
        kept = kept_input(input, d, hyper[3])
        ctx.save_for_backward(kept, weight, d.positions)
        ctx.draw = (d.leg, d.axis, d.size, d.keep)  # its positions are saved above
        ctx.setup = (tuple(input.shape), hyper, bias is not None)
        return F.conv(input, weight, bias, *hyper)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        kept, weight, positions = ctx.saved_tensors
        input_shape, hyper, has_bias = ctx.setup
        grads: List[Optional[torch.Tensor]] = [None] * 7
        if ctx.needs_input_grad[0]:
            grads[0] = F.conv_input_vjp(input_shape, weight, grad_output, *hyper)
        if ctx.needs_input_grad[1]:
            leg, axis, size, keep = ctx.draw
            grads[1] = weight_vjp_from_kept(
                kept, Draw(leg, axis, size, positions, keep), input_shape,
                tuple(weight.shape), grad_output, hyper,
                lowerings_for(grad_output.dtype, "conv_weight_vjp"))
        if has_bias and ctx.needs_input_grad[2]:
            grads[2] = grad_output.sum([0, *range(2, grad_output.dim())])
        return tuple(grads)


class _TndiagConv:
    """Replaces torch's ``_conv_forward`` (called by ``forward``) with ``functional.conv``."""

    _ndim: int
    grad_keep: float = 1.0
    grad_sample: str = "spatial"
    grad_generator: Optional[torch.Generator] = None

    def __init__(self, *args: Any, grad_keep: float = 1.0, grad_sample: str = "spatial",
                 **kwargs: Any) -> None:
        grad_keep, grad_sample = check_keep(grad_keep, "grad_keep"), _module_sample(grad_sample)
        _checked_init(self, False, self._ndim, args, kwargs)  # type: ignore[arg-type]
        self.grad_keep, self.grad_sample, self.grad_generator = grad_keep, grad_sample, None

    def extra_repr(self) -> str:
        text = super().extra_repr()  # type: ignore[misc]
        if self.grad_keep != 1.0:
            text += f", grad_keep={self.grad_keep}, grad_sample={self.grad_sample!r}"
        return text

    def _samples(self, input: torch.Tensor, weight: torch.Tensor) -> bool:
        """Whether this call estimates the weight gradient from kept slices."""
        return (self.grad_keep < 1.0 and self.training  # type: ignore[attr-defined]
                and torch.is_grad_enabled() and weight.requires_grad and input.dim() ==
                self._ndim + 2 and input.shape[0] > 0)

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
        hyper = (hashable(self.stride, "stride"), hashable(padding, "padding"),  # type: ignore
                 hashable(self.dilation, "dilation"), self.groups)  # type: ignore[attr-defined]
        if self._samples(input, weight):
            return _DropoutConv.apply(input, weight, bias, hyper, self.grad_keep,
                                      self.grad_sample, self.grad_generator)
        return F.conv(input, weight, bias, *hyper)


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


def _module_sample(sample: object) -> str:
    return check_sample(sample, MODULE_SAMPLES)


_TORCH_CONV = {torch.nn.Conv1d: Conv1d, torch.nn.Conv2d: Conv2d, torch.nn.Conv3d: Conv3d}


def _swapped(module: torch.nn.Module, cls: Type[torch.nn.Module]) -> torch.nn.Module:
    """A module of class ``cls`` with ``module``'s state: the same Parameter objects, buffers,
    hooks and flags (dictionaries copied, tensors shared)."""
    new = cls.__new__(cls)
    state = dict(module.__dict__)
    for key, value in state.items():
        if isinstance(value, dict):
            state[key] = type(value)(value)
    new.__dict__.update(state)
    return new


def _check_model(model: object, what: str) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{what}: model must be a torch.nn.Module, got {type(model).__name__}")


def _replace_children(model: torch.nn.Module, fn) -> torch.nn.Module:
    """``fn`` applied to every submodule (children first), replacing those it changes."""
    for name, child in list(model.named_children()):
        new = _replace_children(child, fn)
        if new is not child:
            setattr(model, name, new)
    return fn(model)


def tensor_dropout(model: torch.nn.Module, keep: float = 0.5,
                   sample: str = "spatial") -> torch.nn.Module:
    """Estimate every convolution's weight gradient from kept input slices (in place).

    Each ``torch.nn.Conv1d/2d/3d`` (exactly those classes; transposed convolutions and
    subclasses stay) becomes the tndiag module of its dimension sharing the same
    Parameters, with ``grad_keep=keep`` and ``grad_sample=sample``; tndiag convolutions
    already in the model get the new settings. :func:`restore` undoes it.

    Returns:
        ``model`` (a new module only when ``model`` itself is a convolution).

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    >>> net = tensor_dropout(net, keep=0.25)
    >>> type(net[0]).__module__, net[0].grad_keep
    ('tndiag.nn', 0.25)
    >>> type(restore(net)[0]) is torch.nn.Conv2d
    True
    """
    _check_model(model, "tensor_dropout")
    keep, sample = check_keep(keep), _module_sample(sample)

    def switch(m: torch.nn.Module) -> torch.nn.Module:
        origin = type(m)
        if origin in _TORCH_CONV:
            m = _swapped(m, _TORCH_CONV[origin])  # type: ignore[index]
            m._tensor_dropout_from = origin  # type: ignore[assignment]
        if isinstance(m, _TndiagConv):
            m.grad_keep, m.grad_sample = keep, sample
        return m
    return _replace_children(model, switch)


def restore(model: torch.nn.Module) -> torch.nn.Module:
    """Undo :func:`tensor_dropout`: the torch convolutions again, with the same Parameters.

    Modules that were tndiag convolutions before :func:`tensor_dropout` stay tndiag
    modules, with ``grad_keep=1.0``.
    """
    _check_model(model, "restore")

    def back(m: torch.nn.Module) -> torch.nn.Module:
        if not isinstance(m, _TndiagConv):
            return m
        m.grad_keep = 1.0
        origin = m.__dict__.get("_tensor_dropout_from")
        if origin is None:
            return m
        new = _swapped(m, origin)
        for key in ("_tensor_dropout_from", "grad_keep", "grad_sample", "grad_generator"):
            new.__dict__.pop(key, None)
        return new
    return _replace_children(model, back)
