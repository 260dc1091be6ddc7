"""Normalisation and validation of convolution hyper-parameters (torch semantics).

Every builder and torch-facing function goes through here, so that bad input always
raises :class:`~tndiag.errors.InvalidArgumentError` naming the argument and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

from tndiag.errors import InvalidArgumentError
from tndiag.ir.sizes import Size, as_size, pattern_output_size

__all__ = ["ConvSpec", "ntuple", "resolve_padding", "conv_spec", "check_fits",
           "transposed_input_size", "check_output_padding", "PaddingArg"]

PaddingArg = Union[int, str, Sequence[Union[int, Sequence[int]]]]


@dataclass(frozen=True)
class ConvSpec:
    """Per-dimension hyper-parameters of a convolution, fully resolved."""

    ndim: int
    kernel: Tuple[Size, ...]
    stride: Tuple[int, ...]
    padding: Tuple[Tuple[int, int], ...]
    dilation: Tuple[int, ...]


def _is_int(x: object) -> bool:
    return hasattr(x, "__index__") and not isinstance(x, bool)


def ntuple(value: object, ndim: int, name: str, minimum: int | None = None) -> Tuple[int, ...]:
    """Expand an int or a length-``ndim`` sequence of ints to a tuple, checking ``minimum``.

    >>> ntuple(2, 3, "stride", 1)
    (2, 2, 2)
    """
    if _is_int(value):
        values = (int(value.__index__()),) * ndim  # type: ignore[union-attr]
    elif isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        values = tuple(int(v) for v in value)
        if len(values) == 1 and ndim > 1:
            values = values * ndim
        if len(values) != ndim:
            raise InvalidArgumentError(
                f"{name} must be an int or a sequence of {ndim} ints, got {value!r}")
    else:
        raise InvalidArgumentError(
            f"{name} must be an int or a sequence of {ndim} ints, got {value!r}")
    if minimum is not None and any(v < minimum for v in values):
        qualifier = "positive" if minimum == 1 else f">= {minimum}"
        raise InvalidArgumentError(f"{name} must be {qualifier}, got {value!r}")
    return values


def resolve_padding(padding: PaddingArg, ndim: int, kernel: Sequence[Size],
                    stride: Sequence[int], dilation: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
    """Padding as ``(left, right)`` pairs per dimension.

    Accepts an int, a sequence of ints (symmetric), a sequence of ``(left, right)`` pairs
    (asymmetric), ``'valid'`` and ``'same'`` (stride 1 only; the extra pixel goes right, as
    in torch).

    >>> resolve_padding("same", 1, [4], [1], [1])
    ((1, 2),)
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding == "same":
            if any(s != 1 for s in stride):
                raise InvalidArgumentError(
                    f"padding='same' requires stride 1 in every dimension, got stride {tuple(stride)}")
            if not all(isinstance(k, int) for k in kernel):
                raise InvalidArgumentError("padding='same' needs concrete kernel sizes")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise InvalidArgumentError(
            f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        if len(padding) != ndim or not all(
                isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(v) for v in p)
                for p in padding):
            raise InvalidArgumentError(
                f"asymmetric padding must be {ndim} (left, right) pairs of ints, got {padding!r}")
        pairs = tuple((int(a), int(b)) for a, b in padding)
    else:
        pairs = tuple((p, p) for p in ntuple(padding, ndim, "padding"))
    if any(v < 0 for pair in pairs for v in pair):
        raise InvalidArgumentError(f"padding must be non-negative, got {padding!r}")
    return pairs


def conv_spec(ndim: int, kernel: Sequence[Size], stride: object = 1, padding: PaddingArg = 0,
              dilation: object = 1) -> ConvSpec:
    """Validate and resolve all hyper-parameters of an ``ndim``-d convolution."""
    if not _is_int(ndim) or ndim < 1:
        raise InvalidArgumentError(f"ndim must be a positive int, got {ndim!r}")
    kernel = tuple(as_size(k) for k in kernel)
    if len(kernel) != ndim:
        raise InvalidArgumentError(f"kernel_size must have {ndim} entries, got {kernel!r}")
    if any(isinstance(k, int) and k < 1 for k in kernel):
        raise InvalidArgumentError(f"kernel_size must be positive, got {kernel!r}")
    stride_t = ntuple(stride, ndim, "stride", 1)
    dilation_t = ntuple(dilation, ndim, "dilation", 1)
    pads = resolve_padding(padding, ndim, kernel, stride_t, dilation_t)
    return ConvSpec(ndim, kernel, stride_t, pads, dilation_t)


def check_fits(spec: ConvSpec, input_size: Sequence[Size]) -> Tuple[Size, ...]:
    """Output sizes; raises when the dilated kernel exceeds the padded input."""
    outs = []
    for d, I in enumerate(input_size):
        (pl, pr), K = spec.padding[d], spec.kernel[d]
        O = pattern_output_size(I, K, spec.stride[d], pl, pr, spec.dilation[d])
        if isinstance(O, int) and O < 1:
            raise InvalidArgumentError(
                f"kernel size {K} (dilation {spec.dilation[d]}) is larger than the padded input "
                f"size {I} + {pl} + {pr} in spatial dimension {d}; expected "
                f"{spec.dilation[d]}*({K}-1)+1 <= {I + pl + pr}")
        outs.append(O)
    return tuple(outs)


def check_output_padding(output_padding: object, spec: ConvSpec) -> Tuple[int, ...]:
    """Validate ``output_padding`` (< stride or < dilation in each dimension, as in torch)."""
    op = ntuple(output_padding, spec.ndim, "output_padding", 0)
    for d, p in enumerate(op):
        if p >= spec.stride[d] and p >= spec.dilation[d]:
            raise InvalidArgumentError(
                f"output_padding must be smaller than either stride or dilation; got "
                f"output_padding={p}, stride={spec.stride[d]}, dilation={spec.dilation[d]} "
                f"in spatial dimension {d}")
    return op


def transposed_input_size(spec: ConvSpec, in_size: Sequence[Size],
                          output_padding: Sequence[int]) -> Tuple[Size, ...]:
    """Output size of a transposed conv = input size of its adjoint convolution."""
    out = []
    for d, O in enumerate(in_size):
        (pl, pr), K = spec.padding[d], spec.kernel[d]
        I = as_size((O - 1) * spec.stride[d] - pl - pr + spec.dilation[d] * (K - 1)
                    + output_padding[d] + 1)
        if isinstance(I, int) and I < 1:
            raise InvalidArgumentError(
                f"transposed convolution output size would be {I} in spatial dimension {d}; "
                f"padding {spec.padding[d]} is too large for input size {O}")
        out.append(I)
    return tuple(out)
