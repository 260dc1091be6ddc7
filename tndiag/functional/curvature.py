"""Torch-facing derivatives and curvature: VJPs, KFC, KFAC-reduce, GGN diagonal and Gram.

Each function builds its diagram with :mod:`tndiag.ops` (derived by the ``vjp``,
``expand-*`` and ``sum-out`` passes), compiles it once per shapes and hyper-parameters and
runs the cached program. Any number of spatial dimensions.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch

from tndiag import ops
from tndiag.codegen.program import AnyProgram
from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.functional._common import (
    Call,
    agree,
    check_tensors,
    compile_for,
    hashable,
    lowerings_for,
    pad_batch,
    prepare_call,
    program_cache,
    weight_ndim,
)
from tndiag.functional.dropout import approximate_weight_vjp, check_sample
from tndiag.ops.hyper import check_flag
from tndiag.passes.subsample import check_keep

__all__ = ["conv_input_vjp", "conv_weight_vjp", "kfc", "kfac_reduce", "weight_ggn_diag",
           "weight_ggn_gram"]


def _shape(size, what: str) -> Tuple[int, ...]:
    if type(size) is torch.Size:  # the common case (``x.shape``): ints only
        return tuple(size)
    key = hashable(size, what) if isinstance(size, (tuple, list)) else None
    if isinstance(key, tuple) and all(isinstance(s, int) for s in key):
        return key
    raise InvalidArgumentError(f"{what} must be a sequence of ints, got {size!r}")


def _floating(t: Union[torch.Tensor, torch.dtype], what: str, name: str = "input") -> None:
    """Curvature factors are scaled averages: integer tensors (or dtypes) are refused, not
    truncated."""
    dtype = t if isinstance(t, torch.dtype) else t.dtype
    if not (dtype.is_floating_point or dtype.is_complex):
        raise InvalidArgumentError(f"{what}: {name} must have a floating-point or complex "
                                   f"dtype, got {dtype}")


def _nonempty(t: Union[torch.Tensor, Sequence[int]], what: str, name: str = "input",
              axis: int = 0) -> None:
    shape = tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)
    if len(shape) > axis and shape[axis] == 0:
        raise ShapeError(f"{what}: {name} has an empty batch (shape {list(shape)}); the "
                         f"factor averages over samples and needs at least one")


def _check_shape(t: torch.Tensor, want: Sequence[int], what: str) -> None:
    if tuple(t.shape) != tuple(want):
        raise ShapeError(f"{what} has shape {list(t.shape)}, expected {list(want)}")


@program_cache(256)
def _vjp_program(which: str, input_shape, weight_shape, stride, padding, dilation, groups,
                 lowerings) -> AnyProgram:
    build = ops.conv_input_vjp if which == "input" else ops.conv_weight_vjp
    return compile_for(build(input_shape, weight_shape, stride=stride, padding=padding,
                             dilation=dilation, groups=groups), lowerings)


@program_cache(256)
def _output_shape(input_shape, weight_shape, stride, padding, dilation, groups):
    return ops.conv(input_shape, weight_shape, stride=stride, padding=padding,
                    dilation=dilation, groups=groups).output_shape


def conv_input_vjp(input_size: Sequence[int], weight: torch.Tensor, grad_output: torch.Tensor,
                   stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """Gradient of a convolution w.r.t. its input, like ``torch.nn.grad.conv2d_input``.

    Args:
        input_size: shape ``(N, C_in, *I)`` of the input (fixes ``I`` when stride > 1).
        weight: ``(C_out, C_in / groups, *K)``.
        grad_output: ``(N, C_out, *O)``.
        stride, padding, dilation, groups: as in :func:`torch.nn.functional.conv2d`.

    Returns:
        ``(N, C_in, *I)``.

    >>> w, v = torch.randn(4, 3, 3), torch.randn(2, 4, 3)
    >>> g = conv_input_vjp((2, 3, 7), w, v, stride=2)
    >>> torch.allclose(g, torch.nn.grad.conv1d_input((2, 3, 7), w, v, stride=2), atol=1e-6)
    True
    """
    if not agree(grad_output, weight):
        check_tensors(grad_output=grad_output, weight=weight)
    in_shape = _shape(input_size, "input_size")
    return _vjp("input", in_shape, tuple(weight.shape), grad_output,
                (stride, padding, dilation, groups), weight)


def conv_weight_vjp(input: torch.Tensor, weight_size: Sequence[int], grad_output: torch.Tensor,
                    stride=1, padding=0, dilation=1, groups: int = 1, *, keep: float = 1.0,
                    sample: str = "spatial", generator: Optional[torch.Generator] = None,
                    dim: int = 0) -> torch.Tensor:
    """Gradient of a convolution w.r.t. its weight, like ``torch.nn.grad.conv2d_weight``.

    With ``keep < 1`` it is an unbiased estimate (tensor dropout,
    :mod:`tndiag.functional.dropout`): each slice of the input along the leg ``sample``
    names (``"spatial"``: spatial dimension ``dim``; ``"channel"``: input channels) is kept
    with probability ``keep``, drawn from ``generator``, and the kept ones are scaled by
    ``1/keep``; the compiled contraction runs on the kept slices only. ``keep=1.0`` is the
    exact gradient.

    Raises:
        InvalidArgumentError: ``keep`` outside (0, 1], an unknown ``sample``, or
            ``sample="spatial"`` along a spatial dimension of size 1.

    >>> x, v = torch.randn(2, 3, 7), torch.randn(2, 4, 5)
    >>> g = conv_weight_vjp(x, (4, 3, 3), v)
    >>> torch.allclose(g, torch.nn.grad.conv1d_weight(x, (4, 3, 3), v), atol=1e-6)
    True
    >>> gen = torch.Generator().manual_seed(0)
    >>> conv_weight_vjp(x, (4, 3, 3), v, keep=0.5, sample="channel", generator=gen).shape
    torch.Size([4, 3, 3])
    """
    if not agree(input, grad_output):
        check_tensors(input=input, grad_output=grad_output)
    w_shape = _shape(weight_size, "weight_size")
    if not (type(keep) is float and keep == 1.0):  # the exact gradient needs no check
        keep = check_keep(keep)
    sample = check_sample(sample)
    hyper = (stride, padding, dilation, groups)
    if keep == 1.0 or input.shape[:1] == (0,):  # exact (an empty batch: zeros, as torch)
        return _vjp("weight", tuple(input.shape), w_shape, grad_output, hyper, input)
    args = _hyper(hyper)
    if input.dim() != len(w_shape) or weight_ndim(w_shape) < 1:
        raise ShapeError(f"conv_weight_vjp with keep < 1 needs a batched input of rank "
                         f"{len(w_shape)}, got shape {list(input.shape)}")
    _check_shape(grad_output, _output_shape(tuple(input.shape), w_shape, *args), "grad_output")
    return approximate_weight_vjp(input, w_shape, grad_output, args, keep, sample, generator,
                                  dim, lowerings_for(grad_output.dtype, "conv_weight_vjp"))


def _hyper(hyper) -> tuple:
    stride, padding, dilation, groups = hyper
    return (hashable(stride, "stride"), hashable(padding, "padding"),
            hashable(dilation, "dilation"), hashable(groups, "groups"))


#: Which VJP -> the function's name in messages.
_WHAT = {"input": "conv_input_vjp", "weight": "conv_weight_vjp"}


def _vjp(which: str, in_shape, w_shape, grad_output: torch.Tensor, hyper,
         other: torch.Tensor) -> torch.Tensor:
    """Validate the weight rank and ``grad_output``'s shape, then run the cached VJP program.

    An empty batch (N = 0) runs one zero sample: the weight VJP sums it away (zeros, as
    torch), the input VJP's result is sliced back to N = 0.
    """
    weight_ndim(w_shape)
    args = _hyper(hyper)
    lowerings = lowerings_for(grad_output.dtype, _WHAT[which])
    empty = len(in_shape) == len(w_shape) and in_shape[0] == 0
    if empty:
        in_shape = (1, *in_shape[1:])
        other = pad_batch(other) if which == "weight" else other  # the input X
        grad_output = pad_batch(grad_output) if grad_output.shape[:1] == (0,) else grad_output
    call, v_first = _vjp_call(which, in_shape, w_shape, grad_output.shape, *args, lowerings)
    y = call(grad_output.dtype, (grad_output, other) if v_first else (other, grad_output))
    return y[:0] if empty and which == "input" else y


@program_cache(256)
def _vjp_call(which: str, input_shape, weight_shape, v_shape, *key) -> Tuple[Call, bool]:
    """The prepared VJP program, once ``grad_output``'s shape ``v_shape`` is checked; whether
    it takes ``grad_output`` first."""
    want = _output_shape(input_shape, weight_shape, *key[:-1])
    if tuple(v_shape) != tuple(want):
        raise ShapeError(f"grad_output has shape {list(v_shape)}, expected {list(want)}")
    program = _vjp_program(which, input_shape, weight_shape, *key)
    return prepare_call(program, _WHAT[which]), program.inputs[0] == "V"


@program_cache(256)
def _factor_call(reduce: bool, dtype: torch.dtype, shape, *key) -> Call:
    """The prepared factor program, once the input's rank, dtype and batch are checked (a
    miss only: all three are part of the key)."""
    what = "kfac_reduce" if reduce else "kfc"
    if len(shape) < 3:
        raise ShapeError(f"input must have shape (N, C, *I) with at least one spatial "
                         f"dimension, got {list(shape)}")
    _floating(dtype, what)
    _nonempty(shape, what)
    build = ops.kfac_reduce if reduce else ops.kfc
    return prepare_call(compile_for(build(tuple(shape), *key), None), what)


def _factor(reduce: bool, input, kernel_size, stride, padding, dilation, groups, transposed,
            output_padding) -> torch.Tensor:
    if not isinstance(input, torch.Tensor):
        check_tensors(input=input)  # the TypeError naming it
    key = (hashable(kernel_size, "kernel_size"), hashable(stride, "stride"),
           hashable(padding, "padding"), hashable(dilation, "dilation"),
           hashable(groups, "groups"), check_flag(transposed, "transposed"),
           hashable(output_padding, "output_padding"))
    dtype = input.dtype
    return _factor_call(reduce, dtype, input.shape, *key)(dtype, (input,))


def kfc(input: torch.Tensor, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
        transposed: bool = False, output_padding=0) -> torch.Tensor:
    """KFC (KFAC-expand) input factor ``[G, (C/G)·∏K, (C/G)·∏K]``, scaled by ``1/N``.

    Rows are ordered like ``torch.nn.functional.unfold``'s rows. With ``transposed=True``,
    ``input`` is the input of a transposed convolution (``output_padding`` applies).

    >>> x = torch.randn(2, 3, 6, 6)
    >>> u = torch.nn.functional.unfold(x, 3)
    >>> torch.allclose(kfc(x, 3)[0], torch.einsum("nil,njl->ij", u, u) / 2, atol=1e-5)
    True
    """
    return _factor(False, input, kernel_size, stride, padding, dilation, groups, transposed,
                   output_padding)


def kfac_reduce(input: torch.Tensor, kernel_size, stride=1, padding=0, dilation=1,
                groups: int = 1, transposed: bool = False, output_padding=0) -> torch.Tensor:
    """KFAC-reduce input factor, shape as :func:`kfc`, scaled by ``1/(N·(∏O)²)``.

    (``1/(N·(∏I)²)`` when ``transposed``, ``I`` the transposed convolution's output size.)

    >>> x = torch.randn(2, 3, 6, 6)
    >>> u = torch.nn.functional.unfold(x, 3).mean(-1)
    >>> torch.allclose(kfac_reduce(x, 3)[0], u.T @ u / 2, atol=1e-5)
    True
    """
    return _factor(True, input, kernel_size, stride, padding, dilation, groups, transposed,
                   output_padding)


@program_cache(256)
def _ggn_call(kind: str, *key) -> Tuple[Call, bool]:
    """The prepared GGN program; whether it takes the input first."""
    build = ops.weight_ggn_diag if kind == "diag" else ops.weight_ggn_gram
    program = compile_for(build(*key), None)
    return prepare_call(program, f"weight_ggn_{kind}"), program.inputs[0] == "X"


def _ggn(kind: str, input, grad_output_factor, kernel_size, stride, padding, dilation, groups):
    what = f"weight_ggn_{kind}"
    check_tensors(input=input, grad_output_factor=grad_output_factor)
    if input.dim() < 3:
        raise ShapeError(f"input must have shape (N, C_in, *I) with at least one spatial "
                         f"dimension, got {list(input.shape)}")
    if grad_output_factor.dim() != input.dim() + 1:
        raise ShapeError(f"grad_output_factor must have shape [Z, N, C_out, *O] (rank "
                         f"{input.dim() + 1}), got {list(grad_output_factor.shape)}")
    _floating(input, what)
    _nonempty(input, what)
    _nonempty(grad_output_factor, what, "grad_output_factor")
    key = (tuple(input.shape), tuple(grad_output_factor.shape),
           hashable(kernel_size, "kernel_size"), hashable(stride, "stride"),
           hashable(padding, "padding"), hashable(dilation, "dilation"),
           hashable(groups, "groups"))
    call, x_first = _ggn_call(kind, *key)
    pair = (input, grad_output_factor) if x_first else (grad_output_factor, input)
    return call(input.dtype, pair)


def weight_ggn_diag(input: torch.Tensor, grad_output_factor: torch.Tensor, kernel_size,
                    stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """Diagonal of the GGN w.r.t. the weight, shaped like the weight.

    ``grad_output_factor`` ``S`` has shape ``[Z, N, C_out, *O]`` with ``Σ_z S Sᵀ`` the
    per-sample Hessian of the loss w.r.t. the output (Z classes, MC samples, or Z = 1 with
    the per-sample gradient for the empirical Fisher).

    >>> x, s = torch.randn(2, 3, 6), torch.randn(1, 2, 4, 4)
    >>> weight_ggn_diag(x, s, 3).shape
    torch.Size([4, 3, 3])
    """
    return _ggn("diag", input, grad_output_factor, kernel_size, stride, padding, dilation,
                groups)


def weight_ggn_gram(input: torch.Tensor, grad_output_factor: torch.Tensor, kernel_size,
                    stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """GGN Gram matrix ``[Z·N, Z·N]`` (rows ordered ``(z n)``); same non-zero spectrum as the
    GGN w.r.t. the weight.

    >>> x, s = torch.randn(2, 3, 6), torch.randn(3, 2, 4, 4)
    >>> weight_ggn_gram(x, s, 3).shape
    torch.Size([6, 6])
    """
    return _ggn("gram", input, grad_output_factor, kernel_size, stride, padding, dilation,
                groups)
