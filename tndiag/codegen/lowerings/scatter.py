"""``scatter``: patterns whose ``o`` and ``k`` legs lie on one other tensor alone and whose
``i`` leg is open only (col2im, fold) become one step per tensor: per kernel tap, a slice of
the tensor added into a strided slice of a zero output. No Π, no padded buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

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

__all__ = ["RULE", "ScatterSpec", "scatter_spec"]


@dataclass(frozen=True)
class ScatterSpec:
    """``out[.., o·S + k·D − P, ..] += t[.., o, .., k, ..]`` for patterns on one tensor (col2im).

    ``t`` has ``ndim`` axes; pattern ``j`` takes its ``o`` leg from axis ``o_axes[j]`` (which
    becomes the ``I = sizes[j]`` positions in place) and its ``k`` leg from ``k_axes[j]``
    (removed). ``taps[j]`` lists, per kernel tap that reaches the output,
    ``(k, first o, last o, first i)``; the i positions step by ``strides[j]`` (empty while
    sizes are symbolic: such a plan prints its costs but does not run).
    """

    ndim: int
    o_axes: Tuple[int, ...]
    k_axes: Tuple[int, ...]
    sizes: Tuple[Size, ...]
    strides: Tuple[int, ...]
    taps: Tuple[Tuple[Tuple[int, int, int, int], ...], ...]


def _taps(S: int, pl: int, D: int, I: Size, O: Size, K: Size):
    found = []
    for k in range(K if all(isinstance(v, int) for v in (I, O, K)) else 0):  # type: ignore
        lo = max(0, -((k * D - pl) // S))  # ceil((pl - k·D) / S)
        hi = min(O - 1, (I - 1 + pl - k * D) // S)  # type: ignore[operator]
        if lo <= hi:
            found.append((k, lo, hi, lo * S + k * D - pl))
    return tuple(found)


def scatter_spec(letters: str, patterns: Sequence[str], params: Sequence[tuple],
                 sizes: Sequence[Sequence[Size]]) -> Tuple[ScatterSpec, str]:
    """The scatter of a tensor with subscripts ``letters`` through patterns (i, o, k) at once.

    ``params`` are (stride, pad_left, pad_right, dilation) and ``sizes`` (I, O, K) per pattern.

    >>> spec, out = scatter_spec("ncko", ["iok"], [(1, 1, 1, 1)], [(4, 4, 3)])
    >>> out, spec.taps[0]
    ('nci', ((0, 1, 3, 0), (1, 0, 3, 0), (2, 0, 2, 1)))
    """
    taps = tuple(_taps(S, pl, D, I, O, K) for (S, pl, _, D), (I, O, K) in zip(params, sizes))
    out = list(letters)
    for p in patterns:
        out[letters.index(p[1])] = p[0]
    result = "".join(ch for ch in out if ch not in {p[2] for p in patterns})
    spec = ScatterSpec(len(letters), tuple(letters.index(p[1]) for p in patterns),
                       tuple(letters.index(p[2]) for p in patterns), tuple(s[0] for s in sizes),
                       tuple(q[0] for q in params), taps)
    return spec, result


def _holder(state: State, pos: int) -> Optional[int]:
    """The entry carrying both ``o`` and ``k`` of pattern ``pos`` alone, when its ``i`` leg is
    in the output and on nothing else (a fold); None otherwise."""
    entry = state.stack[pos]
    if entry.kind is not EntryKind.PATTERN:
        return None
    i, o, k = entry.letters
    if i not in state.out or any(i in e.letters for q, e in enumerate(state.stack) if q != pos):
        return None
    holder = exclusive_holder(state, o, pos)
    if holder is None or holder != exclusive_holder(state, k, pos):
        return None
    return holder


def _match(state: State) -> List[Match]:
    """The first tensor with all its fold patterns."""
    by_holder: Dict[int, List[int]] = {}
    for pos in range(len(state.stack)):
        holder = _holder(state, pos)
        if holder is not None:
            by_holder.setdefault(holder, []).append(pos)
    if not by_holder:
        return []
    holder, pats = next(iter(by_holder.items()))
    base, entries = state.stack[holder], [state.stack[p] for p in pats]
    spec, result = scatter_spec(base.letters, [p.letters for p in entries],
                                [pattern_params(state, p.uid) for p in entries],
                                [tuple(state.sizes[ch] for ch in p.letters) for p in entries])
    return [Match((base.uid, *(p.uid for p in entries)), result, spec)]


def _apply(state: State, match: Match) -> None:
    for u in match.uids[1:]:
        state.relower(u, LoweringKind.SCATTER)
    state.push(match.uids, match.result, StepKind.SCATTER, match.info, "scatter",
               _cost(state, match))


def _cost(state: State, match: Match):
    return state.size(state.entry(match.uids[0]).letters)


RULE = StepRule("scatter", StepKind.SCATTER, _match, _apply, _cost,
                "fold patterns on one tensor become per-tap adds into a zero output")
