"""``scatter``: patterns whose ``o`` and ``k`` legs lie on one other tensor alone and whose
``i`` leg is open only (col2im, fold) become one step per tensor: per kernel tap, a slice of
the tensor added into a strided slice of a zero output. No Π, no padded buffer.

When the scatter is the whole network on a ``N, C, K.., O..`` tensor of a 1-d or 2-d fold,
torch's kernels are allowed (the ``native`` lowering) and the cost model
(:func:`tndiag.codegen.cost.col2im_wins`) prefers it, the step calls
``torch.nn.functional.fold`` instead (``col2im``: one call instead of one add per tap).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

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

__all__ = ["RULE", "ScatterSpec", "scatter_spec"]


@dataclass(frozen=True)
class ScatterSpec:
    """``out[.., o·S + k·D − P, ..] += t[.., o, .., k, ..]`` for patterns on one tensor (col2im).

    ``t`` has ``ndim`` axes; pattern ``j`` takes its ``o`` leg from axis ``o_axes[j]`` (which
    becomes the ``I = sizes[j]`` positions in place) and its ``k`` leg from ``k_axes[j]``
    (removed). ``taps[j]`` lists, per kernel tap that reaches the output,
    ``(k, first o, last o, first i)``; the i positions step by ``strides[j]`` (empty while
    sizes are symbolic: such a plan prints its costs but does not run). ``col2im``, when not
    empty, holds the arguments of ``torch.nn.functional.fold`` computing the same sum
    (``(input shape, output_size, kernel_size, dilation, padding, stride, result shape)``,
    a 1-d fold as a 2-d one with a unit leading axis).
    """

    ndim: int
    o_axes: Tuple[int, ...]
    k_axes: Tuple[int, ...]
    sizes: Tuple[Size, ...]
    strides: Tuple[int, ...]
    taps: Tuple[Tuple[Tuple[int, int, int, int], ...], ...]
    col2im: Tuple[Tuple[int, ...], ...] = ()


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
    params = [pattern_params(state, p.uid) for p in entries]
    spec, result = scatter_spec(base.letters, [p.letters for p in entries], params,
                                [tuple(state.sizes[ch] for ch in p.letters) for p in entries])
    fold = _col2im(state, base.letters, [p.letters for p in entries], params, result)
    if fold:
        spec = dataclasses.replace(spec, col2im=fold)
    return [Match((base.uid, *(p.uid for p in entries)), result, spec)]


def _col2im(state: State, letters: str, patterns: Sequence[str], params: Sequence[tuple],
            result: str) -> Tuple[Tuple[int, ...], ...]:
    """``torch.nn.functional.fold``'s arguments for this scatter (see the module docstring),
    else ``()``: it is all that is left, on ``N, C, K.., O..`` of a 1-d or 2-d fold into the
    output, left padding >= 0, torch's block count equal to ``O``, sizes concrete, and the
    cost model prefers the kernel."""
    nd = len(patterns)
    if "native" not in state.allowed or nd not in (1, 2) or len(letters) != 2 + 2 * nd:
        return ()
    ks, os = "".join(p[2] for p in patterns), "".join(p[1] for p in patterns)
    if len(state.active()) != 1 + nd or letters[2:] != ks + os or state.out != result:
        return ()
    sizes = [state.sizes[ch] for ch in letters + "".join(p[0] for p in patterns)]
    if not all(isinstance(v, int) for v in sizes):
        return ()
    n, c, K, O, I = sizes[0], sizes[1], sizes[2:2 + nd], sizes[2 + nd:2 + 2 * nd], sizes[-nd:]
    for (S, pl, _, D), i, o, k in zip(params, I, O, K):
        if pl < 0 or (i + 2 * pl - D * (k - 1) - 1) // S + 1 != o:
            return ()
    if not cost.col2im_wins(int(cost.prod(sizes[:2 + 2 * nd])), int(cost.prod(K))):
        return ()
    two = lambda values, fill: (fill,) * (2 - nd) + tuple(int(v) for v in values)  # noqa: E731
    return ((n, c * int(cost.prod(K)), int(cost.prod(O))), two(I, 1), two(K, 1),
            two((q[3] for q in params), 1), two((q[1] for q in params), 0),
            two((q[0] for q in params), 1), (n, c, *I))


def _apply(state: State, match: Match) -> None:
    for u in match.uids[1:]:
        state.relower(u, LoweringKind.SCATTER)
    label = "col2im" if match.info.col2im else "scatter"
    state.push(match.uids, match.result, StepKind.SCATTER, match.info, label,
               _cost(state, match))


def _cost(state: State, match: Match):
    return state.size(state.entry(match.uids[0]).letters)


RULE = StepRule("scatter", StepKind.SCATTER, _match, _apply, _cost,
                "fold patterns on one tensor become per-tap adds into a zero output")
