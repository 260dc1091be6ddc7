"""``einsum``: what the structured rules left is contracted pairwise along one opt_einsum
path (:data:`~tndiag.codegen.lowerings.base.PATH_OPTIMIZER`); a pairwise product of two
operands holding the same value becomes a Gram step (:func:`gram.pairwise`).

Always applied, last: it is the fallback every network has.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from tndiag.codegen import cost
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


def _match(state: State) -> List[Match]:
    active = state.active()
    if len(active) == 1 and active[0].letters == state.out:
        return []
    path = [(0,)] if len(active) == 1 else path_cost([e.letters for e in active], state.out,
                                                     state.sizes)[0]
    return [Match(tuple(e.uid for e in active), state.out, tuple(path))]


def _cost(state: State, match: Match):
    active = [state.entry(u) for u in match.uids]
    if len(active) == 1:
        return cost.einsum_flops(active[0].letters + "->" + state.out, state.sizes)
    return path_cost([e.letters for e in active], state.out, state.sizes)[1]


def _apply(state: State, match: Match) -> None:
    for positions in match.info:
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
