"""``conv`` and ``conv_transpose`` with torch's signatures, evaluated as compiled diagrams.

The diagram (with its bias term, when given) is built and compiled once per shapes,
hyper-parameters and dtype; later calls with the same key only look the prepared call up
and run it.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from tndiag import ops
from tndiag.errors import ShapeError
from tndiag.functional._common import (
    Call,
    agree,
    batched,
    check_tensors,
    compile_for,
    empty_batch,
    hashable,
    lowerings_for,
    prepare_call,
    program_cache,
    weight_ndim,
)

__all__ = ["conv", "conv_transpose"]


def conv(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
         stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """N-d convolution, like ``torch.nn.functional.conv{1,2,3}d`` for any number of dims.

    The number of spatial dimensions is ``weight.dim() - 2``; ``input`` is
    ``(N, C_in, *I)`` or unbatched ``(C_in, *I)``. ``padding`` may also be ``'same'``,
    ``'valid'`` or ``(left, right)`` pairs per dimension. As in torch, ``N`` may be 0 and
    integer dtypes are computed (exactly, by einsum steps); the result is never a view of
    an input.

    Args:
        input: ``(N, C_in, *I)`` or ``(C_in, *I)``.
        weight: ``(C_out, C_in / groups, *K)``.
        bias: ``(C_out,)`` or None.
        stride: int or tuple, >= 1.
        padding: int, tuple, ``'same'`` (stride 1 only), ``'valid'`` or ``(left, right)`` pairs.
        dilation: int or tuple, >= 1.
        groups: number of groups; divides ``C_in`` and ``C_out``.

    Returns:
        ``(N, C_out, *O)`` (or ``(C_out, *O)`` for unbatched input).

    Raises:
        InvalidArgumentError: a hyper-parameter is invalid (the message names it).
        ShapeError: a tensor has the wrong rank or shape.

    >>> import torch
    >>> x, w = torch.randn(2, 4, 9, 9), torch.randn(6, 2, 3, 3)
    >>> y = conv(x, w, stride=2, padding=1, groups=2)
    >>> torch.allclose(y, torch.nn.functional.conv2d(x, w, None, 2, 1, 1, 2), atol=1e-5)
    True
    """
    if not (agree(input, weight) and (bias is None or agree(input, bias))):
        check_tensors(input=input, weight=weight, bias=bias, optional=("bias",))
    key = (hashable(stride, "stride"), hashable(padding, "padding"),
           hashable(dilation, "dilation"), hashable(groups, "groups"), input.dtype)
    if input.dim() >= 2 and input.shape[0] == 0 and input.dim() == weight.dim():
        return empty_batch(lambda x: conv(x, weight, bias, stride, padding, dilation, groups),
                           input)
    call, has_batch = _conv_call(
        input.shape, weight.shape, None if bias is None else bias.shape, *key)
    return _run(call, has_batch, input, weight, bias)


def conv_transpose(input: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None, stride=1, padding=0,
                   output_padding=0, groups: int = 1, dilation=1) -> torch.Tensor:
    """N-d transposed convolution, like ``torch.nn.functional.conv_transpose{1,2,3}d``.

    Args:
        input: ``(N, C_in, *I)`` or unbatched ``(C_in, *I)``.
        weight: ``(C_in, C_out / groups, *K)``.
        bias: ``(C_out,)`` or None.
        stride: int or tuple, >= 1.
        padding: int or tuple (removed from both sides of the result).
        output_padding: int or tuple added on the right; smaller than stride or dilation.
        groups: number of groups; divides ``C_in``.
        dilation: int or tuple, >= 1.

    Returns:
        ``(N, C_out, *O)`` with ``O = (I-1)·S - 2P + D·(K-1) + output_padding + 1``.

    Raises:
        InvalidArgumentError: a hyper-parameter is invalid (the message names it).
        ShapeError: a tensor has the wrong rank or shape.

    >>> import torch
    >>> x, w = torch.randn(2, 4, 5), torch.randn(4, 3, 3)
    >>> y = conv_transpose(x, w, stride=2, output_padding=1)
    >>> y.shape
    torch.Size([2, 3, 12])
    >>> torch.allclose(y, torch.nn.functional.conv_transpose1d(x, w, None, 2, 0, 1), atol=1e-5)
    True
    """
    if not (agree(input, weight) and (bias is None or agree(input, bias))):
        check_tensors(input=input, weight=weight, bias=bias, optional=("bias",))
    key = (hashable(stride, "stride"), hashable(padding, "padding"),
           hashable(output_padding, "output_padding"), hashable(groups, "groups"),
           hashable(dilation, "dilation"), input.dtype)
    if input.dim() >= 2 and input.shape[0] == 0 and input.dim() == weight.dim():
        return empty_batch(lambda x: conv_transpose(x, weight, bias, stride, padding,
                                                    output_padding, groups, dilation), input)
    call, has_batch = _conv_transpose_call(
        input.shape, weight.shape, None if bias is None else bias.shape, *key)
    return _run(call, has_batch, input, weight, bias)


def _run(call: Call, has_batch: bool, input: torch.Tensor, weight: torch.Tensor,
         bias: Optional[torch.Tensor]) -> torch.Tensor:
    if has_batch:
        return call(input.dtype, (input, weight) if bias is None else (input, weight, bias))
    x = input.unsqueeze(0)
    return call(input.dtype, (x, weight) if bias is None else (x, weight, bias)).squeeze(0)


def _check_bias(bias_shape: Optional[Sequence[int]], out_channels: int) -> None:
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise ShapeError(f"bias must have shape ({out_channels},) (one value per output "
                         f"channel), got shape {tuple(bias_shape)}")


def _with_batch(input_shape: Sequence[int], ndim: int, what: str) -> Tuple[tuple, bool]:
    has_batch = batched(input_shape, ndim, what)
    return (tuple(input_shape) if has_batch else (1, *input_shape)), has_batch


@program_cache(1024)
def _conv_call(input_shape, weight_shape, bias_shape, stride, padding, dilation,
               groups, dtype) -> Tuple[Call, bool]:
    lowerings = lowerings_for(dtype, "conv")
    ndim = weight_ndim(weight_shape)
    shape, has_batch = _with_batch(input_shape, ndim, "conv")
    diagram = ops.conv(shape, tuple(weight_shape), stride=stride, padding=padding,
                       dilation=dilation, groups=groups, bias=bias_shape is not None)
    _check_bias(bias_shape, weight_shape[0])
    return prepare_call(compile_for(diagram, lowerings), "conv"), has_batch


@program_cache(1024)
def _conv_transpose_call(input_shape, weight_shape, bias_shape, stride, padding,
                         output_padding, groups, dilation, dtype) -> Tuple[Call, bool]:
    lowerings = lowerings_for(dtype, "conv_transpose")
    ndim = weight_ndim(weight_shape)
    shape, has_batch = _with_batch(input_shape, ndim, "conv_transpose")
    diagram = ops.conv_transpose(shape, tuple(weight_shape), stride=stride, padding=padding,
                                 output_padding=output_padding, groups=groups,
                                 dilation=dilation, bias=bias_shape is not None)
    _check_bias(bias_shape, weight_shape[1] * groups)
    return prepare_call(compile_for(diagram, lowerings), "conv_transpose"), has_batch
