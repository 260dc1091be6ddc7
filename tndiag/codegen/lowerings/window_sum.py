"""``window-sum``: a summed pattern ``Σ_o Π[i, k]`` whose ``i`` leg is on exactly one other
tensor becomes K window sums along that axis (one pass; at stride 1 a long window is the
total minus its borders). The summed pattern itself comes from the diagram (the ``sum-out``
rule); this rule only chooses the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from tndiag.codegen.lowerings.base import EntryKind, Match, State, StepRule, exclusive_holder
from tndiag.codegen.program import LoweringKind, StepKind

__all__ = ["RULE", "WindowSpec", "window_spec"]


@dataclass(frozen=True)
class WindowSpec:
    """``out[.., k] = Σ_o padded[.., o·S + k·D, ..]`` along ``axis``: the windows per tap ``k``.

    ``windows[k] = (first, last)`` are the unpadded input positions the tap reaches (every
    ``stride``-th one in between); an empty window is ``(0, -1)``.
    """

    axis: int
    size: int
    stride: int
    windows: Tuple[Tuple[int, int], ...]


def window_spec(axis: int, I: int, O: int, K: int, stride: int, pad_left: int,
                dilation: int) -> WindowSpec:
    """The windows of ``Σ_o Π[i, o, k]`` for each tap (concrete sizes).

    >>> window_spec(0, 5, 5, 3, 1, 1, 1).windows  # 'same' padding: borders drop one pixel
    ((0, 3), (0, 4), (1, 4))
    """
    windows = []
    for k in range(K):
        lo = k * dilation - pad_left
        hi = lo + stride * (O - 1)
        first = lo if lo >= 0 else lo + stride * (-(lo // stride))
        last = hi if hi <= I - 1 else lo + stride * ((I - 1 - lo) // stride)
        windows.append((first, last) if first <= last else (0, -1))
    return WindowSpec(axis, I, stride, tuple(windows))


def _match(state: State) -> List[Match]:
    """The summed pattern to apply next: the one on its holder's last axis (contiguous)."""
    found = []
    for pos, entry in enumerate(state.stack):
        if entry.kind is not EntryKind.REDUCED or not isinstance(state.sizes[entry.letters[0]],
                                                                 int):
            continue
        holder = exclusive_holder(state, entry.letters[0], pos)
        if holder is not None and state.stack[holder].kind is not EntryKind.REDUCED:
            found.append((state.stack[holder].letters.index(entry.letters[0]), holder, pos))
    if not found:
        return []
    axis, holder, pos = max(found)
    base, entry = state.stack[holder], state.stack[pos]
    i, k = entry.letters
    t = state.ops[entry.uid].tensor
    O = int(t.out_size) if t.out_size is not None else int(t.indices[1].size)
    p = t.pattern_params
    spec = window_spec(axis, int(state.sizes[i]), O, int(state.sizes[k]), p.stride,
                       p.pad_left, p.dilation)
    return [Match((base.uid, entry.uid), base.letters.replace(i, "") + k, spec)]


def _apply(state: State, match: Match) -> None:
    state.relower(match.uids[1], LoweringKind.WINDOW_SUM)
    state.push(match.uids, match.result, StepKind.WINDOW_SUM, match.info, "window-sum",
               _cost(state, match))


def _cost(state: State, match: Match):
    return state.size(state.entry(match.uids[0]).letters)


RULE = StepRule("window-sum", StepKind.WINDOW_SUM, _match, _apply, _cost,
                "a summed pattern on one tensor's axis becomes K window sums")
