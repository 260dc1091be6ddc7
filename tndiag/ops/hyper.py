"""Normalisation and validation of convolution hyper-parameters (torch semantics).

Every builder and torch-facing function goes through here, so that bad input always
raises :class:`~tndiag.errors.InvalidArgumentError` naming the argument and what was expected.

Limits (see ``docs/errors.md``): every integer (size, stride, padding, dilation, groups)
fits torch's ``int64`` (at most :data:`MAX_INT`), and a diagram has at most
:data:`MAX_NDIM` spatial dimensions: a ``d``-dimensional convolution needs ``3·d + 4``
einsum subscripts and einsum has 52 letters, so ``d = 16`` is the largest that compiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

from tndiag.errors import InvalidArgumentError
from tndiag.ir.sizes import Size, as_size, pattern_output_size

__all__ = ["ConvSpec", "ntuple", "resolve_padding", "conv_spec", "check_fits",
           "transposed_input_size", "check_output_padding", "PaddingArg", "MAX_INT",
           "MAX_NDIM", "check_int", "check_ndim", "check_flag", "is_int"]

PaddingArg = Union[int, str, Sequence[Union[int, Sequence[int]]]]

#: Largest integer accepted anywhere (torch's sizes and hyper-parameters are ``int64``).
MAX_INT = 2**63 - 1
#: Most spatial dimensions a diagram may have (``3·d + 4`` einsum letters of 52).
MAX_NDIM = 16


@dataclass(frozen=True)
class ConvSpec:
    """Per-dimension hyper-parameters of a convolution, fully resolved."""

    ndim: int
    kernel: Tuple[Size, ...]
    stride: Tuple[int, ...]
    padding: Tuple[Tuple[int, int], ...]
    dilation: Tuple[int, ...]


def is_int(x: object) -> bool:
    """Whether ``x`` is an integer (``__index__``, not a bool, not a multi-element tensor)."""
    if isinstance(x, int):
        return not isinstance(x, bool)
    if not hasattr(x, "__index__") or type(x).__name__ in ("bool", "bool_"):
        return False
    try:
        x.__index__()  # type: ignore[attr-defined]
    except (TypeError, ValueError, RuntimeError):  # e.g. a float or multi-element tensor
        return False
    return True


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, MAX_INT]``, else InvalidArgumentError naming ``name``.

    >>> check_int(3, "groups", 1)
    3
    """
    if not is_int(value):
        raise InvalidArgumentError(f"{name} must be an int, got {value!r}")
    v = int(value.__index__())  # type: ignore[attr-defined]
    _check_range(v, value, name, minimum)
    return v


def _check_range(v: int, shown: object, name: str, minimum: int | None) -> None:
    if minimum is not None and v < minimum:
        qualifier = "positive" if minimum == 1 else f">= {minimum}"
        raise InvalidArgumentError(f"{name} must be {qualifier}, got {shown!r}")
    if abs(v) > MAX_INT:
        raise InvalidArgumentError(f"{name} must be at most 2**63 - 1 (torch's int64), "
                                   f"got {shown!r}")


def check_ndim(ndim: object) -> int:
    """Validate a number of spatial dimensions (``1 <= ndim <= MAX_NDIM``).

    >>> check_ndim(3)
    3
    """
    if not is_int(ndim) or not 1 <= int(ndim.__index__()) <= MAX_NDIM:  # type: ignore
        raise InvalidArgumentError(f"ndim must be an int between 1 and {MAX_NDIM} (einsum has "
                                   f"52 subscript letters), got {ndim!r}")
    return int(ndim.__index__())  # type: ignore[attr-defined]


def check_flag(value: object, name: str) -> bool:
    """A boolean flag: ``True`` or ``False`` (numpy bools too), nothing else.

    >>> check_flag(False, "transposed")
    False
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise InvalidArgumentError(f"{name} must be True or False, got {value!r}")


def ntuple(value: object, ndim: int, name: str, minimum: int | None = None) -> Tuple[int, ...]:
    """Expand an int or a length-``ndim`` sequence of ints to a tuple, checking ``minimum``.

    >>> ntuple(2, 3, "stride", 1)
    (2, 2, 2)
    """
    if is_int(value):
        values = (int(value.__index__()),) * ndim  # type: ignore[attr-defined]
    elif isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        values = tuple(int(v.__index__()) for v in value)
        if len(values) == 1 and ndim > 1:
            values = values * ndim
        if len(values) != ndim:
            raise InvalidArgumentError(
                f"{name} must be an int or a sequence of {ndim} ints, got {value!r}")
    else:
        raise InvalidArgumentError(
            f"{name} must be an int or a sequence of {ndim} ints, got {value!r}")
    for v in values:
        _check_range(v, value, name, minimum)
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
                    f"padding='same' requires stride 1 in every dimension, got stride "
                    f"{tuple(stride)}")
            if not all(isinstance(k, int) for k in kernel):
                raise InvalidArgumentError("padding='same' needs concrete kernel sizes")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise InvalidArgumentError(
            f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        if len(padding) != ndim or not all(
                isinstance(p, (tuple, list)) and len(p) == 2 and all(is_int(v) for v in p)
                for p in padding):
            raise InvalidArgumentError(
                f"asymmetric padding must be {ndim} (left, right) pairs of ints, got {padding!r}")
        pairs = tuple((int(a.__index__()), int(b.__index__())) for a, b in padding)
    else:
        pairs = tuple((p, p) for p in ntuple(padding, ndim, "padding"))
    if any(v < 0 for pair in pairs for v in pair):
        raise InvalidArgumentError(f"padding must be non-negative, got {padding!r}")
    for pair in pairs:
        for v in pair:
            _check_range(v, padding, "padding", 0)
    return pairs


def conv_spec(ndim: int, kernel: Sequence[Size], stride: object = 1, padding: PaddingArg = 0,
              dilation: object = 1) -> ConvSpec:
    """Validate and resolve all hyper-parameters of an ``ndim``-d convolution."""
    ndim = check_ndim(ndim)
    kernel = tuple(as_size(k) for k in kernel)
    if len(kernel) != ndim:
        raise InvalidArgumentError(f"kernel_size must have {ndim} entries, got {kernel!r}")
    for k in kernel:
        if isinstance(k, int):
            _check_range(k, kernel, "kernel_size", 1)
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
