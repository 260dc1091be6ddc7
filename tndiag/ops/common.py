"""Pieces shared by the builders: symbolic shapes, channel legs, per-dimension patterns."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import sympy

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Index, Size, Tensor, as_size, pattern
from tndiag.ops.hyper import MAX_INT, ConvSpec, check_int, check_ndim, is_int

__all__ = ["shape_or_symbols", "infer_ndim", "spatial_patterns", "channel_axis",
           "check_groups", "group_size", "as_shape", "check_size"]


def as_shape(shape: object, what: str) -> Tuple[object, ...]:
    """``shape`` as a tuple, refusing a string or any other non-sequence (names ``what``).

    >>> as_shape([2, "C"], "input")
    (2, 'C')
    """
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise InvalidArgumentError(
            f"{what} shape must be a sequence of sizes (ints or symbol names), got {shape!r}")
    return tuple(shape)


def check_size(value: object, what: str) -> Size:
    """A size: an int in ``[1, MAX_INT]``, a symbol name or a sympy expression.

    ``what`` names the value in errors (``"input sizes"``, ``"kernel_size"``).

    >>> check_size("C_in", "input sizes"), check_size(3, "input sizes")
    (C_in, 3)
    """
    if isinstance(value, str) and not value.isidentifier():
        raise InvalidArgumentError(f"{what} must be positive ints or symbol names "
                                   f"(identifiers), got {value!r}")
    if isinstance(value, (str, sympy.Basic)):
        return as_size(value)
    if not is_int(value):
        raise InvalidArgumentError(f"{what} must be positive ints or symbol names, got "
                                   f"{value!r}")
    size = int(value.__index__())  # type: ignore[attr-defined]
    if size < 1:
        raise InvalidArgumentError(f"{what} must be positive, got {value!r}")
    if size > MAX_INT:
        raise InvalidArgumentError(f"{what} must be at most 2**63 - 1, got {value!r}")
    return size


def infer_ndim(ndim, *shapes_and_ranks) -> int:
    """Number of spatial dims from ``ndim`` or from the first given shape (rank minus extra).

    ``shapes_and_ranks`` are ``(shape, extra, name)`` triples; ``name`` is used in errors.
    """
    if ndim is not None:
        ndim = check_ndim(ndim)
    for shape, extra, name in shapes_and_ranks:
        if shape is not None:
            n = len(as_shape(shape, name)) - extra
            if ndim is not None and ndim != n:
                raise InvalidArgumentError(
                    f"shape {tuple(shape)} has {n} spatial dimensions but ndim={ndim}")
            if n < 1:
                raise InvalidArgumentError(
                    f"shape {tuple(shape)} needs at least {extra + 1} dimensions")
            return check_ndim(n)
    if ndim is None:
        raise InvalidArgumentError("give ndim or a shape to fix the number of spatial dimensions")
    return check_ndim(ndim)


def shape_or_symbols(shape, symbols: Sequence[object], what: str) -> Tuple[Size, ...]:
    """Sizes from a given shape (checked for rank and positivity) or from default symbols."""
    if shape is None:
        return tuple(as_size(s) for s in symbols)
    shape = as_shape(shape, what)
    if len(shape) != len(symbols):
        raise InvalidArgumentError(
            f"{what} must have {len(symbols)} dimensions, got shape {tuple(shape)}")
    for s in shape:
        if isinstance(s, int) and not isinstance(s, bool) and s < 1:
            raise InvalidArgumentError(f"{what} sizes must be positive, got {tuple(shape)}")
    return tuple(check_size(s, f"{what} sizes") for s in shape)


def group_size(total: Size, groups: int, what: str) -> Size:
    """``total / groups``, checked to divide when concrete."""
    if isinstance(total, int):
        if total % groups:
            raise InvalidArgumentError(
                f"groups={groups} must divide {what}={total}")
        return total // groups
    return as_size(total / groups)


def check_groups(groups: object) -> int:
    """Validate ``groups`` (a positive int)."""
    try:
        return check_int(groups, "groups", 1)
    except InvalidArgumentError:
        raise InvalidArgumentError(f"groups must be a positive int, got {groups!r}") from None


def channel_axis(g: Index | None, c: Index) -> Tuple[Index, ...]:
    """The runtime channel axis: ``(g c)`` when grouped, else ``c``."""
    return (g, c) if g is not None else (c,)


#: Strides and dilations above this that change no entry of Π are replaced (see _equivalent).
_IRRELEVANT_ABOVE = 2**31 - 1


def _equivalent(I: Size, O: Size, K: Size, stride: int, pad_left: int, pad_right: int,
                dilation: int) -> Tuple[int, int]:
    """The smallest equivalent stride and dilation when a huge one changes nothing.

    With one output (``O = 1``) the stride does not matter, with one tap (``K = 1``) the
    dilation does not; a huge value there (up to ``2**63 - 1``, which torch accepts) would
    only overflow the ``int64`` strides of a runtime view, so it is replaced by the smallest
    value with the same pattern.
    """
    if stride > _IRRELEVANT_ABOVE and O == 1 and all(isinstance(v, int) for v in (I, K)):
        stride = max(1, I + pad_left + pad_right - dilation * (K - 1))  # type: ignore
    if dilation > _IRRELEVANT_ABOVE and K == 1:
        dilation = 1
    return stride, dilation


def spatial_patterns(spec: ConvSpec, input_size: Sequence[Size], output_size: Sequence[Size],
                     i: str = "i", o: str = "o", k: str = "k", name: str = "P"
                     ) -> Tuple[List[Tensor], List[Index], List[Index], List[Index]]:
    """One Π per spatial dimension, with legs ``i{d}``, ``o{d}``, ``k{d}`` (1-based ``d``)."""
    patterns, ins, outs, ks = [], [], [], []
    for d in range(spec.ndim):
        ix = Index(f"{i}{d + 1}", input_size[d])
        ox = Index(f"{o}{d + 1}", output_size[d])
        kx = Index(f"{k}{d + 1}", spec.kernel[d])
        pl, pr = spec.padding[d]
        stride, dilation = _equivalent(input_size[d], output_size[d], spec.kernel[d],
                                       spec.stride[d], pl, pr, spec.dilation[d])
        patterns.append(pattern(f"{name}{d + 1}", ix, ox, kx, stride, pl, pr, dilation))
        ins.append(ix)
        outs.append(ox)
        ks.append(kx)
    return patterns, ins, outs, ks
