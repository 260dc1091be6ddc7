"""Pieces shared by the builders: symbolic shapes, channel legs, per-dimension patterns."""

from __future__ import annotations

from typing import List, Sequence, Tuple

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Index, Size, Tensor, as_size, pattern
from tndiag.ops.hyper import ConvSpec

__all__ = ["shape_or_symbols", "infer_ndim", "spatial_patterns", "channel_axis",
           "check_groups", "group_size"]


def infer_ndim(ndim, *shapes_and_ranks) -> int:
    """Number of spatial dims from ``ndim`` or from the first given shape (rank minus extra)."""
    for shape, extra in shapes_and_ranks:
        if shape is not None:
            n = len(shape) - extra
            if ndim is not None and ndim != n:
                raise InvalidArgumentError(
                    f"shape {tuple(shape)} has {n} spatial dimensions but ndim={ndim}")
            if n < 1:
                raise InvalidArgumentError(
                    f"shape {tuple(shape)} needs at least {extra + 1} dimensions")
            return n
    if ndim is None:
        raise InvalidArgumentError("give ndim or a shape to fix the number of spatial dimensions")
    if not isinstance(ndim, int) or ndim < 1:
        raise InvalidArgumentError(f"ndim must be a positive int, got {ndim!r}")
    return ndim


def shape_or_symbols(shape, symbols: Sequence[object], what: str) -> Tuple[Size, ...]:
    """Sizes from a given shape (checked for rank and positivity) or from default symbols."""
    if shape is None:
        return tuple(as_size(s) for s in symbols)
    if len(shape) != len(symbols):
        raise InvalidArgumentError(
            f"{what} must have {len(symbols)} dimensions, got shape {tuple(shape)}")
    sizes = tuple(as_size(s) for s in shape)
    if any(isinstance(s, int) and s < 1 for s in sizes):
        raise InvalidArgumentError(f"{what} sizes must be positive, got {tuple(shape)}")
    return sizes


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
    if not hasattr(groups, "__index__") or isinstance(groups, bool) or groups < 1:  # type: ignore
        raise InvalidArgumentError(f"groups must be a positive int, got {groups!r}")
    return int(groups)  # type: ignore[arg-type]


def channel_axis(g: Index | None, c: Index) -> Tuple[Index, ...]:
    """The runtime channel axis: ``(g c)`` when grouped, else ``c``."""
    return (g, c) if g is not None else (c,)


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
        patterns.append(pattern(f"{name}{d + 1}", ix, ox, kx, spec.stride[d], pl, pr,
                                spec.dilation[d]))
        ins.append(ix)
        outs.append(ox)
        ks.append(kx)
    return patterns, ins, outs, ks
