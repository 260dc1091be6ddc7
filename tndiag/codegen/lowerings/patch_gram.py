"""``patch-gram``: the Gram matrix of a tensor's patches (KFC's input factor) in one step.

It matches a network of two mirrored halves (:func:`~tndiag.codegen.lowerings.gram.split_halves`)
whose half is one input ``X`` and one dense pattern ``Π(i, o, k)`` per spatial leg ``i`` of
``X``, the ``o`` legs shared by both halves and summed, the ``k`` legs kept: ``R[g, c, k, c',
k'] = Σ_{n, o} X[n, g, c, o·S + k·D − P] X[n, g, c', o·S + k'·D − P]``. ``X``'s other legs
are summed (``n``: fixed by the mirror, not kept), batch legs (``g``: fixed, kept) or channels
(``c``: moved, kept). The step runs along a route of :data:`tndiag.codegen.routes.ROUTES`:
``unfold`` (the padded input's unfolded copy and ``M Mᵀ``, what the ``view`` and ``gram``
rules give), ``shifted`` (one GEMM per class of translated blocks, thin-slab corrections for
the rest) or, where the patches are ``X`` itself, ``batched`` (``X_n X_nᵀ`` summed; kernels in
:mod:`tndiag.backends.routes.patch_gram`). The plans are data computed here:
:func:`unfold_recipe`, :func:`shifted_recipe` (with :func:`shifted_plan`) and
:func:`batched_recipe`.

A transposed convolution's KFC has its patterns the other way round (``X``'s legs on their
``o`` legs): it does not match, and keeps the ``gram`` rule's program.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import EntryKind, Match, State, StepRule, pattern_params
from tndiag.codegen.lowerings.gram import mirror_key, split_halves
from tndiag.codegen.program import LoweringKind, StepKind
from tndiag.ir.sizes import Size

__all__ = ["RULE", "PatchGram", "flops", "shifted_flops", "unfold_recipe", "shifted_recipe",
           "batched_recipe", "shifted_plan", "geometry"]


@dataclass(frozen=True)
class PatchGram:
    """What a ``patch-gram`` step computes.

    Attributes:
        perm: permutation of ``X``'s axes to (summed, batch, channel, spatial) legs, which
            are then fused to ``[N, G, C, *I]``.
        n, g, c: the fused sizes of the summed, batch and channel legs.
        axes: per spatial leg ``(I, O, K, stride, left padding, dilation)``.
        r_shape: the kernel's result ``R`` with one axis per leg (batch, channels, taps, the
            mirrored channels, the mirrored taps); ``out_perm`` permutes it to the step's result.
    """

    perm: Tuple[int, ...]
    n: Size
    g: Size
    c: Size
    axes: Tuple[Tuple[Size, Size, Size, int, int, int], ...]
    r_shape: Tuple[Size, ...]
    out_perm: Tuple[int, ...]

    @property
    def sizes(self) -> Tuple[Tuple[str, Size], ...]:
        """``(name, size)`` of every size the step depends on (ints for a concrete step)."""
        spatial = tuple((f"{name}{n}", a[j]) for n, a in enumerate(self.axes)
                        for j, name in enumerate("IOK"))
        return (("n", self.n), ("g", self.g), ("c", self.c)) + spatial

    @property
    def taps(self) -> Size:
        """Kernel taps ``∏K``."""
        return cost.prod(a[2] for a in self.axes)

    @property
    def unfolded_is_input(self) -> bool:
        """Whether the patches are ``X`` itself (every axis one tap, stride 1, no padding)."""
        return all(K == 1 and S == 1 and P == 0 and O == I for I, O, K, S, P, _ in self.axes)

    @property
    def columns(self) -> Size:
        """Summed length of the Gram product: ``N·∏O``."""
        return self.n * cost.prod(a[1] for a in self.axes)


def _spatial(state: State, x: str, pats: List[int], sigma: dict) -> Optional[list]:
    """Per pattern ``(X axis, uid, (i, o, k))`` when each is ``(i on X, o shared, k kept)``."""
    found = []
    everything = "".join(state.letters())
    for uid in pats:
        i, o, k = state.entry(uid).letters
        if (i not in x or everything.count(i) != 2 or sigma.get(o) != o or o in state.out
                or sigma.get(k) == k or k not in state.out or i in state.out):
            return None
        found.append((x.index(i), uid, (i, o, k)))
    return sorted(found)


def _match(state: State) -> List[Match]:
    if len(state.steps) or any(e.kind is EntryKind.MIRROR for e in state.stack):
        return []
    found = split_halves(state.letters(), [mirror_key(op) for op in state.ops], state.out)
    if found is None:
        return []
    first, second, _, sigma = found
    entries = [state.stack[p] for p in first]
    inputs = [e for e in entries if state.ops[e.uid].lowering is LoweringKind.INPUT]
    pats = [e.uid for e in entries if e.kind is EntryKind.PATTERN]
    if len(inputs) != 1 or len(pats) + 1 != len(entries) or not pats:
        return []
    x = inputs[0].letters
    spatial = _spatial(state, x, pats, sigma)
    if spatial is None or len(set(x)) != len(x):
        return []
    info = _spec(state, x, spatial, sigma)
    if info is None:
        return []
    uids = (inputs[0].uid, *(uid for _, uid, _ in spatial),
            *(state.stack[p].uid for p in second))
    return [Match(uids, state.out, (1 + len(spatial), info))]


def _spec(state: State, x: str, spatial: list, sigma: dict) -> Optional[PatchGram]:
    """The step's description, or None when ``X``'s other legs or the output do not fit."""
    legs = {"sum": "", "batch": "", "channel": ""}
    on_axis = {letters[0] for _, _, letters in spatial}
    for ch in x:
        if ch in on_axis:
            continue
        if sigma.get(ch, ch) != ch:
            if ch not in state.out:
                return None
            legs["channel"] += ch
        else:
            legs["batch" if ch in state.out else "sum"] += ch
    order = legs["sum"] + legs["batch"] + legs["channel"] + "".join(
        letters[0] for _, _, letters in spatial)
    taps = "".join(letters[2] for _, _, letters in spatial)
    r = legs["batch"] + legs["channel"] + taps + "".join(
        sigma[ch] for ch in legs["channel"] + taps)
    if sorted(r) != sorted(state.out) or len(set(r)) != len(r):
        return None
    axes = []
    for _, uid, (i, o, k) in spatial:
        stride, pad_left, _, dilation = pattern_params(state, uid)
        axes.append((state.sizes[i], state.sizes[o], state.sizes[k], stride, pad_left,
                     dilation))
    return PatchGram(tuple(x.index(ch) for ch in order), state.size(legs["sum"]),
                     state.size(legs["batch"]), state.size(legs["channel"]), tuple(axes),
                     tuple(state.sizes[ch] for ch in r), tuple(r.index(ch) for ch in state.out))


def flops(spec: PatchGram) -> Size:
    """FLOPs of the whole Gram product ``2·G·(C·∏K)²·N·∏O`` (what the ``gram`` rule's step
    would count; the routes compute less: :func:`tndiag.codegen.cost.route_seconds`).

    >>> spec = PatchGram((0, 1, 2, 3), 2, 1, 4, ((8, 8, 3, 1, 1, 1),), (1, 4, 3, 4, 3),
    ...                  tuple(range(5)))
    >>> flops(spec), shifted_flops(spec)  # 2·(4·3)²·16; 3 bases of 16 + 3 slab pairs of 2
    (4608, 1920)
    """
    rows = spec.c * spec.taps
    return 2 * spec.g * rows * rows * spec.columns


def shifted_flops(spec: PatchGram) -> int:
    """FLOPs of the ``shifted`` route (concrete sizes): the base blocks' band and gap GEMMs
    and the derived blocks' slab GEMMs (an example: :func:`flops`)."""
    _, O, _, spans, gaps, _ = geometry(spec)
    blocks, base, _ = shifted_plan(spec)
    per = 2 * int(spec.g) * int(spec.c) ** 2  # per summed element of one block
    gap = sum(int(cost.prod(O[:level])) * (O[level] - 1) * run for level, run in gaps)
    box = int(cost.prod(O)) * int(spec.n)
    slabs = sum(2 * box // O[b[6]] * b[7] for b in blocks if b[0] == "derive")
    return per * (base * (spans[0] + gap) + slabs)


def _cost(state: State, match: Match):
    """The cheaper route's FLOPs: the symmetric product's half, or the ``shifted`` plan's."""
    spec = match.info[1]
    half = flops(spec) // 2 if isinstance(flops(spec), int) else flops(spec)
    if not all(isinstance(v, int) for _, v in spec.sizes):
        return half
    return min(half, shifted_flops(spec))


def _apply(state: State, match: Match) -> None:
    half, spec = match.info
    x_uid, pattern_uids, mirror_uids = match.uids[0], match.uids[1:half], match.uids[half:]
    for u in pattern_uids:
        state.relower(u, LoweringKind.VIEW)
    for u in mirror_uids:
        state.relower(u, LoweringKind.MIRROR)
        entry = state.entry(u)
        entry.kind, entry.letters = EntryKind.MIRROR, ""
    unfolded = spec.g * spec.c * spec.taps * spec.columns  # the unfold route's copy
    state.push((x_uid, *pattern_uids), match.result, StepKind.PATCH_GRAM, spec, "patch-gram",
               flops(spec), temp=unfolded)


def _arrange(spec: PatchGram) -> tuple:
    """``(perm or None, [N, G, C, *I])`` taking the operand to the kernel's layout."""
    perm = tuple(spec.perm)
    return (None if perm == tuple(range(len(perm))) else perm,
            (int(spec.n), int(spec.g), int(spec.c), *[int(a[0]) for a in spec.axes]))


def _finish(spec: PatchGram) -> tuple:
    """``(R with one axis per leg, permutation to the step's result or None)``."""
    perm = tuple(spec.out_perm)
    return (tuple(int(v) for v in spec.r_shape),
            None if perm == tuple(range(len(perm))) else perm)


def unfold_recipe(spec: PatchGram, blocks: Tuple[Tuple[int, int], ...]) -> tuple:
    """The ``unfold`` route's literal: arrangement, padding, unfolds, symmetric blocks."""
    extents, unfolds = [], []
    for axis, (_, O, K, S, _, D) in enumerate(spec.axes):
        extents.append((int(O) - 1) * S + D * (int(K) - 1) + 1)
        unfolds.append((3 + axis, D * (int(K) - 1) + 1, S))
    dilated = tuple(D for *_, D in spec.axes)
    taps = (Ellipsis,) + tuple(slice(None, None, d) for d in dilated)
    return ("unfold", _arrange(spec), _padding(spec, extents), tuple(unfolds),
            taps if any(d > 1 for d in dilated) else None, tuple(blocks), _finish(spec))


def _padding(spec: PatchGram, extents: List[int]) -> tuple:
    """``(F.pad list or None, crop index or None)`` taking each spatial axis of ``X`` to
    ``extents`` positions: zeros added on the left and where the extent runs past the
    input, positions beyond it sliced off (a view, not a copy)."""
    pads, crop = [], [slice(None)] * 3
    for (I, _, _, _, P, _), extent in zip(spec.axes, extents):
        right = extent - P - int(I)
        pads.append((P, max(0, right)))
        crop.append(slice(0, extent))
    flat = [p for lr in reversed(pads) for p in lr]
    short = any(extent < P + int(I) for (I, _, _, _, P, _), extent in zip(spec.axes, extents))
    return flat if any(flat) else None, tuple(crop) if short else None


def _phases(spec: PatchGram) -> List[tuple]:
    """Per axis ``(Q, first phase, phases used, [(phase, q) of each tap])``."""
    out = []
    for _, O, K, S, _, D in spec.axes:
        at = [((k * D) % S, (k * D) // S) for k in range(int(K))]
        first = min(r for r, _ in at)
        used = max(r for r, _ in at) - first + 1
        Q = max(q for _, q in at) + int(O)
        out.append((Q, first, used, [(r - first, q) for r, q in at]))
    return out


@functools.lru_cache(maxsize=256)
def shifted_plan(spec: PatchGram) -> Tuple[list, int, int]:
    """``(blocks, base count, derived count)`` of the ``shifted`` route.

    Each block is ``("base", kf, kf', (pA, a), (pB, b))`` or ``("derive", kf, kf', source,
    (pA, a), (pB, b), axis, τ)``: ``kf`` the flat tap of the rows, ``p`` a phase index,
    ``a``/``b`` the boxes' first positions ``q`` per axis (after the move for a derived
    block, which adds the slab at ``a + O`` and removes the one at ``a − τ`` on ``axis``).

    >>> from tndiag.codegen.lowerings.patch_gram import PatchGram
    >>> spec = PatchGram((0, 1, 2, 3, 4), 8, 1, 4, ((6, 6, 3, 1, 1, 1),) * 2,
    ...                  (1, 4, 3, 3, 4, 3, 3), tuple(range(7)))
    >>> _, base, derived = shifted_plan(spec)
    >>> base, derived  # 13 classes of the 45 blocks on and above the diagonal
    (13, 32)
    """
    axes = _phases(spec)
    K = [int(a[2]) for a in spec.axes]
    O = [int(a[1]) for a in spec.axes]
    used = [u for _, _, u, _ in axes]
    taps = list(itertools.product(*[range(k) for k in K]))
    classes: Dict[tuple, list] = {}
    for i, k in enumerate(taps):
        for j in range(i, len(taps)):
            kk = taps[j]
            ra = tuple(axes[x][3][k[x]][0] for x in range(len(K)))
            rb = tuple(axes[x][3][kk[x]][0] for x in range(len(K)))
            qa = tuple(axes[x][3][k[x]][1] for x in range(len(K)))
            qb = tuple(axes[x][3][kk[x]][1] for x in range(len(K)))
            key = (ra, rb, tuple(y - x for x, y in zip(qa, qb)))
            classes.setdefault(key, []).append((qa, i, j))
    blocks: list = []
    base = derived = 0
    for (ra, rb, shift), members in classes.items():
        pa, pb = _phase_index(ra, used), _phase_index(rb, used)
        seen: List[Dict[tuple, tuple]] = [{} for _ in K]  # per axis: the other coordinates ->
        for qa, i, j in sorted(members):  # the last member seen (the nearest before on it)
            source = None
            for axis in range(len(K)):  # outer axes first: their slabs are often one run
                rest = qa[:axis] + qa[axis + 1:]
                prev = seen[axis].get(rest)
                if source is None and prev is not None and 2 * (qa[axis] - prev[0][axis]) < O[axis]:
                    source = axis, prev
                seen[axis][rest] = (qa, (i, j))
            qb = tuple(x + s for x, s in zip(qa, shift))
            if source is None:
                blocks.append(("base", i, j, (pa, qa), (pb, qb)))
                base += 1
                continue
            axis, (start, pair) = source
            blocks.append(("derive", i, j, pair, (pa, start),
                           (pb, tuple(x + s for x, s in zip(start, shift))), axis,
                           qa[axis] - start[axis]))
            derived += 1
    return blocks, base, derived


def _phase_index(phases: tuple, used: List[int]) -> int:
    n = 0
    for r, u in zip(phases, used):
        n = n * u + r
    return n


def batched_recipe(spec: PatchGram) -> tuple:
    """The ``batched`` route's literal: arrangement and result (``X`` is its own patches)."""
    return ("batched", _arrange(spec), _finish(spec))


def geometry(spec: PatchGram) -> tuple:
    """``(Q, O, flat strides, band spans, gap levels, taps)`` of the ``shifted`` layout
    ``[phase, G, C, Q_1, ..., Q_D, N]``: ``spans[x]`` is the flat length from a box's first
    to its last element over axes ``x..D``, ``gaps`` the ``(axis, run length)`` of the
    positions between consecutive rows of a box's band."""
    Q = tuple(q for q, _, _, _ in _phases(spec))
    O = tuple(int(a[1]) for a in spec.axes)
    strides = [int(spec.n)] * len(Q)
    for x in reversed(range(len(Q) - 1)):
        strides[x] = strides[x + 1] * Q[x + 1]
    spans = [int(spec.n)] * (len(Q) + 1)
    for x in reversed(range(len(Q))):
        spans[x] = (O[x] - 1) * strides[x] + spans[x + 1]
    gaps = tuple((x, strides[x] - spans[x + 1]) for x in range(len(Q) - 1)
                 if strides[x] > spans[x + 1] and O[x] > 1)
    return Q, O, tuple(strides), tuple(spans), gaps, int(spec.taps)


def shifted_recipe(spec: PatchGram) -> tuple:
    """The ``shifted`` route's literal: arrangement, padding, phase layout, geometry, plan."""
    blocks = tuple(shifted_plan(spec)[0])
    rows, cols = tuple(b[1] for b in blocks), tuple(b[2] for b in blocks)
    above = tuple(n for n, b in enumerate(blocks) if b[1] != b[2])
    return ("shifted", _arrange(spec), _layout(spec), geometry(spec), blocks,
            (rows, cols, above), _finish(spec))


def _layout(spec: PatchGram) -> tuple:
    """``(phases per axis, Q per axis, moves)`` of the phase-major copy: per combination of
    phases, the strided slices of ``X``'s spatial axes (positions ``i`` with ``i + P ≡ r``
    mod ``S``) and where they land (``q = (i + P) div S``), empty combinations left out."""
    per_axis = []
    for (Q, first, used, _), (I, _, _, S, P, _) in zip(_phases(spec), spec.axes):
        moves = []
        for r in range(used):
            i0 = max(0, -P)
            i0 += (first + r - i0 - P) % S
            q0 = (i0 + P) // S
            count = max(0, min(-(-(int(I) - i0) // S), Q - q0))
            if count:
                moves.append((r, slice(i0, i0 + S * (count - 1) + 1, S),
                              slice(q0, q0 + count)))
        per_axis.append(moves)
    combos = tuple((tuple(m[0] for m in c), tuple(m[1] for m in c), tuple(m[2] for m in c))
                   for c in itertools.product(*per_axis))
    phases = tuple(used for _, _, used, _ in _phases(spec))
    return phases, tuple(q for q, _, _, _ in _phases(spec)), combos


RULE = StepRule("patch-gram", StepKind.PATCH_GRAM, _match, _apply, _cost,
                "mirrored halves of an input and its patterns: the Gram of the patches")
