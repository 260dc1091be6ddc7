"""Argument checks shared by the torch-facing functions (kept thin: they run on every call)."""

from __future__ import annotations

from typing import Hashable, Sequence

import torch

from tndiag.errors import InvalidArgumentError, ShapeError

__all__ = ["hashable", "check_tensors", "batched", "weight_ndim"]


def hashable(value: object, name: str) -> Hashable:
    """``value`` with lists turned into tuples, so it can key a cache.

    >>> hashable([1, [2, 3]], "padding")
    (1, (2, 3))
    """
    if isinstance(value, (int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(hashable(v, name) for v in value)
    try:
        hash(value)
    except TypeError:
        raise InvalidArgumentError(
            f"{name} must be an int or a tuple of ints, got {value!r}") from None
    return value  # type: ignore[return-value]


def check_tensors(input: object, weight: object = None, bias: object = None) -> None:
    """Check that the given tensors are torch tensors on one device with one dtype."""
    if not isinstance(input, torch.Tensor):
        raise InvalidArgumentError(f"input must be a torch.Tensor, got {type(input).__name__}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise InvalidArgumentError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != input.dtype:
            raise InvalidArgumentError(
                f"{name} has dtype {t.dtype} but input has dtype {input.dtype}; "
                f"expected {name}.dtype == input.dtype")
        if t.device != input.device:
            raise InvalidArgumentError(
                f"{name} is on device {t.device} but input is on {input.device}; "
                f"expected {name}.device == input.device")


def weight_ndim(weight_shape: Sequence[int]) -> int:
    """Number of spatial dimensions of a convolution weight ``(C_out, C_in/groups, *K)``."""
    if len(weight_shape) < 3:
        raise ShapeError(f"weight must have rank >= 3 (out channels, in channels / groups, "
                         f"*kernel_size), got shape {tuple(weight_shape)}")
    return len(weight_shape) - 2


def batched(input_shape: Sequence[int], ndim: int, what: str) -> bool:
    """Whether ``input_shape`` has a batch axis (rank ``ndim + 2``) or not (rank ``ndim + 1``)."""
    if len(input_shape) == ndim + 2:
        return True
    if len(input_shape) == ndim + 1:
        return False
    raise ShapeError(f"{what}: expected input of rank {ndim + 2} (batched) or {ndim + 1} "
                     f"(unbatched) for {ndim} spatial dimensions, got input of shape "
                     f"{tuple(input_shape)}")
