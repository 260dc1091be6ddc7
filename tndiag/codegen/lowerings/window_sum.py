"""``window-sum``: every summed pattern ``Σ_o Π[i, k]`` whose ``i`` leg is on one tensor, and
only there, is applied to that tensor in one step: each ``i`` axis becomes its ``k`` axis in
place (one reduction for the axes whose taps all sum equally many, evenly spaced positions;
window sums or a product with the count matrix for the others, one preallocated result). The
summed patterns come from the diagram (the ``sum-out`` rule); this rule only chooses the
kernel (plan: :func:`tndiag.codegen.cost.window_plan`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from tndiag.codegen.lowerings.base import EntryKind, Match, State, StepRule, exclusive_holder
from tndiag.codegen.program import LoweringKind, Step, StepKind
from tndiag.ir.sizes import Size

__all__ = ["RULE", "WindowSpec", "WindowSums", "window_spec", "fold_scale"]


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

    @property
    def lengths(self) -> Tuple[int, ...]:
        """Positions each tap sums.

        >>> WindowSpec(0, 5, 1, ((0, 3), (0, 4), (1, 4))).lengths
        (4, 5, 4)
        """
        return tuple(max(0, (last - first) // self.stride + 1) for first, last in self.windows)

    @property
    def borders(self) -> Tuple[int, ...]:
        """Positions of each tap's residue class mod S outside its window (0 when empty).

        >>> WindowSpec(0, 7, 2, ((0, 4), (1, 5))).borders  # classes {0,2,4,6}, {1,3,5}
        (1, 0)
        """
        return tuple((self.size - 1 - first % self.stride) // self.stride + 1 - length
                     if length else 0 for (first, _), length in zip(self.windows, self.lengths))

    @property
    def from_classes(self) -> Tuple[bool, ...]:
        """Per tap, whether its class sum minus the border is cheaper than its own sum.

        >>> WindowSpec(0, 9, 1, ((0, 7), (0, 8), (1, 8))).from_classes
        (True, True, True)
        """
        return tuple(0 < length and border < length
                     for length, border in zip(self.lengths, self.borders))

    @property
    def uniform(self) -> bool:
        """Whether every tap sums equally many positions from evenly spaced starts (then all
        taps are one strided view ``[.., L, K, ..]`` of the axis: no padding reached).

        >>> WindowSpec(0, 8, 2, ((0, 4), (1, 5))).uniform
        True
        >>> WindowSpec(0, 5, 1, ((0, 3), (0, 4))).uniform  # 'same' padding cuts tap 0
        False
        """
        lengths, firsts = self.lengths, [first for first, _ in self.windows]
        steps = {b - a for a, b in zip(firsts, firsts[1:])}
        return lengths[0] > 0 and len(set(lengths)) == 1 and len(steps) <= 1 \
            and min(steps, default=0) >= 0


@dataclass(frozen=True)
class WindowSums:
    """The summed patterns of one tensor of ``shape``: one :class:`WindowSpec` per summed axis
    (its ``axis`` is the position in the tensor); the result has each such axis replaced by its
    taps, the other axes unchanged, times ``scale`` (1 unless :func:`fold_scale` moved the
    square root of the program's factor here)."""

    shape: Tuple[Size, ...]
    axes: Tuple[WindowSpec, ...]
    scale: float = 1.0

    @property
    def sizes(self) -> Tuple[Tuple[str, Size], ...]:
        """``(axis, size)`` of the tensor's axes: routes are priced only when all are ints."""
        return tuple((str(a), s) for a, s in enumerate(self.shape))

    @property
    def out_shape(self) -> Tuple[Size, ...]:
        """The result's shape.

        >>> WindowSums((2, 8), (WindowSpec(1, 8, 2, ((0, 4), (1, 5))),)).out_shape
        (2, 2)
        """
        taps: Dict[int, Size] = {w.axis: len(w.windows) for w in self.axes}
        return tuple(taps.get(a, s) for a, s in enumerate(self.shape))


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


def _holders(state: State) -> Dict[int, List[int]]:
    """Holder position -> positions of the summed patterns on it (concrete sizes only)."""
    found: Dict[int, List[int]] = {}
    for pos, entry in enumerate(state.stack):
        if entry.kind is not EntryKind.REDUCED or not all(
                isinstance(state.sizes[ch], int) for ch in entry.letters):
            continue
        holder = exclusive_holder(state, entry.letters[0], pos)
        if holder is not None and state.stack[holder].kind is not EntryKind.REDUCED:
            found.setdefault(holder, []).append(pos)
    return found


def _spec(state: State, holder: int, pos: int) -> WindowSpec:
    base, entry = state.stack[holder], state.stack[pos]
    i, k = entry.letters
    t = state.ops[entry.uid].tensor
    O = int(t.out_size) if t.out_size is not None else int(t.indices[1].size)
    p = t.pattern_params
    return window_spec(base.letters.index(i), int(state.sizes[i]), O, int(state.sizes[k]),
                       p.stride, p.pad_left, p.dilation)


def _match(state: State) -> List[Match]:
    """One match per holder: all its summed patterns, each ``i`` letter replaced by ``k``."""
    matches = []
    for holder, positions in _holders(state).items():
        base = state.stack[holder]
        specs = tuple(sorted((_spec(state, holder, p) for p in positions),
                             key=lambda w: w.axis))
        result = base.letters
        for p in positions:
            i, k = state.stack[p].letters
            result = result.replace(i, k)
        info = WindowSums(tuple(state.sizes[ch] for ch in base.letters), specs)
        uids = (base.uid, *(state.stack[p].uid for p in positions))
        matches.append(Match(uids, result, info))
    return matches


def _apply(state: State, match: Match) -> None:
    for uid in match.uids[1:]:
        state.relower(uid, LoweringKind.WINDOW_SUM)
    state.push(match.uids, match.result, StepKind.WINDOW_SUM, match.info, "window-sum",
               _cost(state, match))


def _cost(state: State, match: Match):
    return state.size(state.entry(match.uids[0]).letters)


RULE = StepRule("window-sum", StepKind.WINDOW_SUM, _match, _apply, _cost,
                "the summed patterns on one tensor's axes become one window-sum step")


def fold_scale(steps: Sequence[Step], operands: int, scale: float) -> Tuple[List[Step], float]:
    """Move a positive program factor into a window-sum step whose result only the last step,
    a Gram product ``T Tᵀ``, takes: ``(√s·T)(√s·T)ᵀ = s·T Tᵀ``, so the result needs no scaling
    pass. The step keeps ``√s`` as :attr:`WindowSums.scale` (the kernels multiply it into the
    count matrix, or scale the window sums, which hold no more elements than the Gram
    product's result); ``operands`` is the number of operands the first step sees.

    >>> from tndiag.codegen.lowerings.gram import GramSpec
    >>> spec = WindowSums((2, 8), (WindowSpec(1, 8, 2, ((0, 6), (1, 7))),))
    >>> steps = [Step((0, 1), "ab,bc->ac", StepKind.WINDOW_SUM, spec),
    ...          Step((0,), "ac,aC->cC", StepKind.GRAM, GramSpec((1, 0), (), (2,), 2, "cC",
    ...                                                          (0, 1)))]
    >>> folded, rest = fold_scale(steps, 2, 0.25)
    >>> folded[0].info.scale, rest
    (0.5, 1.0)
    """
    if not scale > 0 or scale == 1 or len(steps) < 2:
        return list(steps), scale
    window, gram = steps[-2], steps[-1]
    if window.kind is not StepKind.WINDOW_SUM or gram.kind is not StepKind.GRAM:
        return list(steps), scale
    live = operands
    for step in steps[:-1]:
        live += 1 - len(step.positions)
    spec: WindowSums = window.info
    batch, kept = getattr(gram.info, "batch", None), getattr(gram.info, "kept", None)
    if gram.positions != (live - 1,) or spec.scale != 1 or batch is None or kept is None \
            or not all(isinstance(v, int) for v in (*spec.shape, *batch, *kept)):
        return list(steps), scale
    sums, product = math.prod(spec.out_shape), math.prod(batch) * math.prod(kept) ** 2
    if sums > product and window.route != "kron":
        return list(steps), scale  # scaling the sums would cost more than the result
    info = dataclasses.replace(spec, scale=math.sqrt(scale))
    return [*steps[:-2], dataclasses.replace(window, info=info), gram], 1.0
