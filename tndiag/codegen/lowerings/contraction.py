"""``einsum``: what the structured rules left is contracted pairwise along one opt_einsum
path (:data:`~tndiag.codegen.lowerings.base.PATH_OPTIMIZER`); a pairwise product of two
operands holding the same value becomes a Gram step (:func:`gram.pairwise`).

A disconnected product (:func:`~tndiag.codegen.components.components`) is contracted one
component at a time, each along its own path to its open letters (a component without open
letters to a scalar), and the components' results are joined last along a path of outer
products to the output.

Always applied, last: it is the fallback every network has.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from tndiag.codegen import cost
from tndiag.codegen.components import components
from tndiag.codegen.lowerings import gram
from tndiag.codegen.lowerings.base import (
    PATH_OPTIMIZER,
    Entry,
    EntryKind,
    Match,
    State,
    StepRule,
    nominal,
)
from tndiag.codegen.program import StepKind

__all__ = ["CONTRACTION", "path_cost"]


def path_cost(subs: Sequence[str], result: str, sizes) -> Tuple[List[Tuple[int, ...]], int]:
    """The contraction path of ``subs -> result`` and its FLOPs (symbols at their nominal
    value).

    >>> path_cost(["ab", "bc", "cd"], "ad", {"a": 2, "b": 3, "c": 4, "d": 5})
    ([(0, 1), (0, 1)], 128)
    """
    import opt_einsum

    shapes = [tuple(nominal(sizes[ch]) for ch in s) for s in subs]
    path, info = opt_einsum.contract_path(",".join(subs) + "->" + result, *shapes,
                                          shapes=True, optimize=PATH_OPTIMIZER)
    return [tuple(sorted(p)) for p in path], int(info.opt_cost)


def _piece(state: State, entries: Sequence[Entry], out: str) -> Tuple[Tuple[int, ...],
                                                                       Tuple[Tuple[int, ...], ...]]:
    """``(uids, path)`` contracting ``entries`` to ``out``; a single entry has no path (the
    join's einsum sums its own letters)."""
    uids = tuple(e.uid for e in entries)
    if len(entries) == 1:
        return uids, ()
    return uids, tuple(path_cost([e.letters for e in entries], out, state.sizes)[0])


def _component_out(state: State, entries: Sequence[Entry]) -> str:
    letters = {ch for e in entries for ch in e.letters}
    return "".join(ch for ch in state.out if ch in letters)


def _match(state: State) -> List[Match]:
    active = state.active()
    if len(active) == 1 and (active[0].letters == state.out or state.any_order
                             and sorted(active[0].letters) == sorted(state.out)):
        return []
    parts = components([e.letters for e in active])
    pieces: Tuple[Tuple[Tuple[int, ...], Tuple[Tuple[int, ...], ...]], ...]
    if len(parts) == 1:
        path = [(0,)] if len(active) == 1 else path_cost([e.letters for e in active],
                                                         state.out, state.sizes)[0]
        pieces = ((tuple(e.uid for e in active), tuple(path)),)
    else:
        pieces = tuple(_piece(state, entries, _component_out(state, entries))
                       for entries in ([active[p] for p in part] for part in parts))
    return [Match(tuple(e.uid for e in active), state.out, pieces)]


def _cost(state: State, match: Match):
    active = [state.entry(u) for u in match.uids]
    if len(active) == 1:
        return cost.einsum_flops(active[0].letters + "->" + state.out, state.sizes)
    if len(match.info) == 1:
        return path_cost([e.letters for e in active], state.out, state.sizes)[1]
    total, outs = 0, []
    for uids, path in match.info:
        entries = [state.entry(u) for u in uids]
        outs.append(_component_out(state, entries) if path else entries[0].letters)
        if path:
            total += path_cost([e.letters for e in entries], outs[-1], state.sizes)[1]
    return total + path_cost(outs, state.out, state.sizes)[1]


def _apply(state: State, match: Match) -> None:
    for uids, path in match.info:
        current = list(uids)
        for positions in path:
            taken = [current[p] for p in positions]
            for p in sorted(positions, reverse=True):
                current.pop(p)
            _pairwise(state, taken)
            current.append(state.stack[-1].uid)
    if len(match.info) > 1:  # join the components' results: outer products, scalar multiplies
        join = path_cost([e.letters for e in state.active()], state.out, state.sizes)[0]
        for positions in join:
            active = state.active()
            _pairwise(state, [active[p].uid for p in positions])


def _pairwise(state: State, uids: List[int]) -> None:
    taken = [state.entry(u) for u in uids]
    active = state.active()
    rest = "".join(e.letters for e in active if e.uid not in uids)
    keep = set(rest) | set(state.out)
    result = state.out if len(active) == len(uids) else "".join(
        dict.fromkeys(ch for e in taken for ch in e.letters if ch in keep))
    flops = cost.einsum_flops(",".join(e.letters for e in taken) + "->" + result, state.sizes)
    spec = gram.pairwise(state, taken, result)
    if spec is not None:
        state.push(uids, result, StepKind.GRAM, spec, "gram", flops, state.size(taken[0].letters))
        return
    state.push(uids, result, StepKind.EINSUM, None, "einsum", flops, _copies(state, taken))


def _copies(state: State, taken: Sequence[Entry]):
    """Elements einsum copies: a strided view must be made contiguous."""
    return sum((state.size(e.letters) for e in taken if e.kind is EntryKind.VIEW), 0)


CONTRACTION = StepRule("einsum", StepKind.EINSUM, _match, _apply, _cost,
                       "the rest contracted pairwise along one opt_einsum path")
