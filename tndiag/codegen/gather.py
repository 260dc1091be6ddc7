"""The ``gather`` step: a sliced pattern ``Π[s[j], o, k]`` applied to the operand on its ``o`` leg.

A sliced pattern (tensor dropout, :mod:`tndiag.passes.subsample`) joins the kept positions
``j`` of an input leg to an operand ``T`` carrying its ``o`` leg. When ``o`` lies on ``T``
alone (not on the output, not on another operand), ``Σ_o T[.., o, ..] Π[s[j], o, k]`` is a
gather: for each kept position and tap, ``o = (s[j] + P_l − k·D) / S`` when that is an integer
in ``[0, O)``, else the entry is zero. The step reads ``T`` at those ``m·K`` positions along
one axis and masks the invalid ones; the result replaces the ``o`` axis by ``(j, k)`` in
place. No dense Π is built and everything after the step runs on the smaller ``j`` leg.

This module holds the codegen side (matching, the frozen spec, the cost); the torch runner
is :func:`tndiag.backends.torch_gather.prepare_gather`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from tndiag.codegen import cost
from tndiag.codegen.lowering import exclusive_holder
from tndiag.ir.sizes import Size

__all__ = ["GatherSpec", "match_gathers", "gather_spec", "gather_flops"]


@dataclass(frozen=True)
class GatherSpec:
    """``out[.., j, k, ..] = T[.., o(s[j], k), ..]`` (zero where no ``o`` exists) on ``axis``.

    Attributes:
        axis: the axis of ``T`` carrying ``o``; it becomes the two axes ``(j, k)``.
        kept: number of kept positions ``m`` (the size of ``j``).
        out_size: ``O``; ``taps``: ``K``.
        stride, pad_left, dilation: the pattern's hyper-parameters.
    """

    axis: int
    kept: Size
    out_size: Size
    taps: Size
    stride: int
    pad_left: int
    dilation: int


def match_gathers(letters: Sequence[str], kinds: Sequence[str], out: str
                  ) -> List[Tuple[int, int]]:
    """``(sliced pattern position, holder position)`` for each sliced pattern whose ``o`` leg
    lies on exactly one other operand (once) and nowhere else.

    >>> match_gathers(["ncj", "jok", "nDo"], ["tensor", "sliced", "tensor"], "Dck")
    [(1, 2)]
    >>> match_gathers(["ncj", "jok"], ["tensor", "sliced"], "cko")
    []
    """
    found = []
    for pos, subs in enumerate(letters):
        if kinds[pos] != "sliced" or len(set(subs)) != 3:
            continue
        holder = exclusive_holder(subs[1], letters, kinds, out, pos)
        if holder is not None and kinds[holder] != "sliced" and \
                len(set(letters[holder])) == len(letters[holder]):
            found.append((pos, holder))
    return found


def gather_spec(holder: str, pattern: str, sizes, params: Tuple[int, int, int, int]
                ) -> Tuple[GatherSpec, str]:
    """The spec and result letters of gathering ``holder`` through the sliced pattern.

    ``params`` are (stride, pad_left, pad_right, dilation); ``sizes`` maps letters to sizes.

    >>> spec, result = gather_spec("nDo", "jok", {"j": 2, "o": 5, "k": 3}, (1, 1, 1, 1))
    >>> result, spec.axis, spec.kept
    ('nDjk', 2, 2)
    """
    j, o, k = pattern
    axis = holder.index(o)
    spec = GatherSpec(axis, sizes[j], sizes[o], sizes[k], params[0], params[1], params[3])
    return spec, holder.replace(o, j + k)


def gather_flops(result: str, sizes) -> Size:
    """One read and one multiply (the validity mask) per element of the result."""
    return 2 * cost.prod(sizes[ch] for ch in result)
