"""``gather``: a sliced pattern ``Π[s[j], o, k]`` applied to the operand on its ``o`` leg.

A sliced pattern (tensor dropout, :mod:`tndiag.passes.subsample`) joins the kept positions
``j`` of an input leg to an operand ``T`` carrying its ``o`` leg. When ``o`` lies on ``T``
alone (not on the output, not on another operand), ``Σ_o T[.., o, ..] Π[s[j], o, k]`` is a
gather: for each kept position and tap, ``o = (s[j] + P_l − k·D) / S`` when that is an integer
in ``[0, O)``, else the entry is zero. The step reads ``T`` at those ``m·K`` positions along
one axis and masks the invalid ones; the result replaces the ``o`` axis by ``(j, k)`` in
place. No dense Π is built and every later step runs on the smaller ``j`` leg. The torch
kernel is :func:`tndiag.backends.torch_gather.run_gather`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import (
    EntryKind,
    Match,
    State,
    StepRule,
    exclusive_holder,
    pattern_params,
)
from tndiag.codegen.program import LoweringKind, StepKind
from tndiag.ir.sizes import Size

__all__ = ["RULE", "GatherSpec", "gather_spec"]


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


def _match(state: State) -> List[Match]:
    """Each sliced pattern whose ``o`` leg lies on exactly one other entry (once)."""
    found = []
    for pos, entry in enumerate(state.stack):
        if entry.kind is not EntryKind.SLICED:
            continue
        holder = exclusive_holder(state, entry.letters[1], pos)
        if holder is None or state.stack[holder].kind is EntryKind.SLICED:
            continue
        base = state.stack[holder]
        spec, result = gather_spec(base.letters, entry.letters, state.sizes,
                                   pattern_params(state, entry.uid))
        found.append(Match((base.uid, entry.uid), result, spec))
    return found


def _apply(state: State, match: Match) -> None:
    state.relower(match.uids[1], LoweringKind.GATHER)
    state.push(match.uids, match.result, StepKind.GATHER, match.info, "gather",
               _cost(state, match))


def _cost(state: State, match: Match) -> Size:
    """One read and one multiply (the validity mask) per element of the result."""
    return 2 * cost.prod(state.sizes[ch] for ch in match.result)


RULE = StepRule("gather", StepKind.GATHER, _match, _apply, _cost,
                "a sliced pattern on one tensor's o axis becomes a gather at the kept positions")
