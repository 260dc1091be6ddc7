"""``unfold``, ``fold`` (any N-d, torch's layout) and ``unfold_kernel`` as compiled diagrams."""

from __future__ import annotations

from typing import Sequence, Tuple

import torch

from tndiag import ops
from tndiag.errors import ShapeError
from tndiag.functional._common import (
    Call,
    check_tensors,
    compile_for,
    empty_batch,
    hashable,
    lowerings_for,
    prepare_call,
    program_cache,
    weight_ndim,
)
from tndiag.ops.hyper import ntuple

__all__ = ["unfold", "fold", "unfold_kernel"]


def unfold(input: torch.Tensor, kernel_size, dilation=1, padding=0, stride=1) -> torch.Tensor:
    """Extract sliding blocks (im2col), like ``torch.nn.functional.unfold`` but for any N-d.

    The number of spatial dimensions is the length of ``kernel_size`` (or of another tuple
    argument). When every argument is an int it is 2, as in torch, for inputs of rank 3 or 4,
    else ``input.dim() - 2``; pass ``kernel_size=(k,)`` for a batched 1-d input.

    Args:
        input: ``(N, C, *I)`` or unbatched ``(C, *I)``.
        kernel_size: int or tuple.
        dilation: int or tuple, >= 1.
        padding: int, tuple, ``(left, right)`` pairs, ``'same'`` or ``'valid'``.
        stride: int or tuple, >= 1.

    Returns:
        ``(N, C·∏K, L)`` with ``L = ∏O`` blocks (``(C·∏K, L)`` when unbatched).

    Raises:
        InvalidArgumentError: a hyper-parameter is invalid (the message names it).
        ShapeError: the input has the wrong rank.

    >>> import torch
    >>> x = torch.randn(2, 3, 8, 8)
    >>> cols = unfold(x, 3, padding=1)
    >>> cols.shape, torch.allclose(cols, torch.nn.functional.unfold(x, 3, padding=1))
    (torch.Size([2, 27, 64]), True)
    >>> unfold(torch.randn(2, 3, 10), (4,), stride=2).shape
    torch.Size([2, 12, 4])
    """
    if not isinstance(input, torch.Tensor):
        check_tensors(input=input)
    key = (hashable(kernel_size, "kernel_size"), hashable(dilation, "dilation"),
           hashable(padding, "padding"), hashable(stride, "stride"))
    if input.dtype == torch.bool:  # every entry is one input entry or zero: exact in uint8
        return unfold(input.to(torch.uint8), kernel_size, dilation, padding, stride).bool()
    call, has_batch = _unfold_call(input.shape, *key, input.dtype)
    if has_batch and input.shape[0] == 0:
        return empty_batch(lambda x: unfold(x, kernel_size, dilation, padding, stride), input)
    return _run(call, has_batch, input)


def fold(input: torch.Tensor, output_size, kernel_size, dilation=1, padding=0,
         stride=1) -> torch.Tensor:
    """Sum sliding blocks back into a tensor (col2im), like ``torch.nn.functional.fold``, N-d.

    The number of spatial dimensions is the length of ``output_size`` (or of another tuple
    argument); when every argument is an int it is 2, as in torch.

    Args:
        input: ``(N, C·∏K, L)`` or unbatched ``(C·∏K, L)``.
        output_size: spatial sizes ``I`` of the result (int or tuple).
        kernel_size: int or tuple.
        dilation: int or tuple, >= 1.
        padding: int, tuple, ``(left, right)`` pairs, ``'same'`` or ``'valid'``.
        stride: int or tuple, >= 1.

    Returns:
        ``(N, C, *I)`` (or ``(C, *I)`` when unbatched).

    Raises:
        InvalidArgumentError: a hyper-parameter is invalid, or ``C·∏K``/``L`` do not match.
        ShapeError: the input has the wrong rank.

    >>> import torch
    >>> cols = torch.randn(2, 27, 64)
    >>> torch.allclose(fold(cols, 8, 3, padding=1),
    ...                torch.nn.functional.fold(cols, 8, 3, padding=1), atol=1e-5)
    True
    """
    if not isinstance(input, torch.Tensor):
        check_tensors(input=input)
    key = (hashable(output_size, "output_size"), hashable(kernel_size, "kernel_size"),
           hashable(dilation, "dilation"), hashable(padding, "padding"),
           hashable(stride, "stride"))
    if input.dtype == torch.bool:  # torch adds overlapping blocks as a logical or
        return fold(input.to(torch.int32), output_size, kernel_size, dilation, padding,
                    stride) != 0
    call, has_batch = _fold_call(input.shape, *key, input.dtype)
    if has_batch and input.shape[0] == 0:
        return empty_batch(lambda x: fold(x, output_size, kernel_size, dilation, padding,
                                          stride), input)
    return _run(call, has_batch, input)


def unfold_kernel(weight: torch.Tensor, input_size, stride=1, padding=0, dilation=1,
                  groups: int = 1) -> torch.Tensor:
    """The Toeplitz matrix ``T`` of a convolution: ``conv(x, w).flatten(1) == x.flatten(1) @ T.T``.

    Args:
        weight: ``(C_out, C_in / groups, *K)``.
        input_size: spatial sizes ``I`` of the convolution's input (int or tuple).
        stride: int or tuple, >= 1.
        padding: int, tuple, ``(left, right)`` pairs, ``'same'`` or ``'valid'``.
        dilation: int or tuple, >= 1.
        groups: number of groups (``T`` is block-diagonal over them).

    Returns:
        ``T`` of shape ``(C_out·∏O, C_in·∏I)``.

    >>> import torch
    >>> w, x = torch.randn(4, 1, 3), torch.randn(5, 2, 10)
    >>> T = unfold_kernel(w, 10, groups=2)
    >>> T.shape
    torch.Size([32, 20])
    >>> y = torch.nn.functional.conv1d(x, w, groups=2)
    >>> torch.allclose(x.flatten(1) @ T.T, y.flatten(1), atol=1e-5)
    True
    """
    check_tensors(weight=weight)
    call = _unfold_kernel_call(
        weight.shape, hashable(input_size, "input_size"), hashable(stride, "stride"),
        hashable(padding, "padding"), hashable(dilation, "dilation"), hashable(groups, "groups"),
        lowerings_for(weight.dtype, "unfold_kernel"))
    return call(weight.dtype, (weight,))


def _run(call: Call, has_batch: bool, input: torch.Tensor) -> torch.Tensor:
    if has_batch:
        return call(input.dtype, (input,))
    return call(input.dtype, (input.unsqueeze(0),)).squeeze(0)


def _spatial_ndim(size_arg: object, others: Sequence[object], ints_ndim: int) -> int:
    """Spatial dims from a tuple-valued argument, else ``ints_ndim`` (torch's 2-d default)."""
    if isinstance(size_arg, tuple):
        return len(size_arg)
    for arg in others:
        if isinstance(arg, tuple) and len(arg) > 1:
            return len(arg)
    return ints_ndim


@program_cache(1024)
def _unfold_call(input_shape, kernel_size, dilation, padding, stride,
                 dtype) -> Tuple[Call, bool]:
    lowerings = lowerings_for(dtype, "unfold")
    rank = len(input_shape)
    ndim = _spatial_ndim(kernel_size, (dilation, padding, stride),
                         2 if rank in (3, 4) else rank - 2)
    if ndim < 1:
        raise ShapeError(f"unfold: expected input of rank >= 3 (N, C, *spatial), got input of "
                         f"shape {tuple(input_shape)}")
    if rank not in (ndim + 1, ndim + 2):
        raise ShapeError(f"unfold: expected input of rank {ndim + 2} (batched) or {ndim + 1} "
                         f"(unbatched) for {ndim} spatial dimensions, got input of shape "
                         f"{tuple(input_shape)}")
    has_batch = rank == ndim + 2
    shape = tuple(input_shape) if has_batch else (1, *input_shape)
    shape = (max(shape[0], 1), *shape[1:])  # an empty batch runs one zero sample
    kernel_size = ntuple(kernel_size, ndim, "kernel_size", 1)
    diagram = ops.unfold(shape, kernel_size, dilation=dilation, padding=padding, stride=stride)
    return prepare_call(compile_for(diagram, lowerings), "unfold"), has_batch


@program_cache(1024)
def _fold_call(input_shape, output_size, kernel_size, dilation, padding, stride,
               dtype) -> Tuple[Call, bool]:
    lowerings = lowerings_for(dtype, "fold")
    ndim = _spatial_ndim(output_size, (kernel_size, dilation, padding, stride), 2)
    if len(input_shape) not in (2, 3):
        raise ShapeError(f"fold: expected input of rank 3 (N, C*prod(kernel_size), L) or 2 "
                         f"(unbatched), got input of shape {tuple(input_shape)}")
    has_batch = len(input_shape) == 3
    shape = tuple(input_shape) if has_batch else (1, *input_shape)
    shape = (max(shape[0], 1), *shape[1:])  # an empty batch runs one zero sample
    output_size = ntuple(output_size, ndim, "output_size", 1)
    kernel_size = ntuple(kernel_size, ndim, "kernel_size", 1)
    diagram = ops.fold(shape, output_size, kernel_size, dilation=dilation, padding=padding,
                       stride=stride)
    return prepare_call(compile_for(diagram, lowerings), "fold"), has_batch


@program_cache(1024)
def _unfold_kernel_call(weight_shape, input_size, stride, padding, dilation, groups,
                        lowerings) -> Call:
    ndim = weight_ndim(weight_shape)
    input_size = ntuple(input_size, ndim, "input_size", 1)
    diagram = ops.unfold_kernel(tuple(weight_shape), input_size, stride=stride, padding=padding,
                                dilation=dilation, groups=groups)
    return prepare_call(compile_for(diagram, lowerings), "unfold_kernel")
