"""The lowering driver: the rules of :mod:`tndiag.codegen.lowerings` in order, then the path.

Each allowed rule is applied until it no longer matches: a match is taken when its step costs
no more (in FLOPs, symbols at their nominal value) than the plain einsum of the operands it
replaces, along one path, plus a fixed overhead per extra step; a rejected match is not
offered again. Then the contraction rule contracts what is left, and deferred actions (the
Gram step of a mirrored half) finish the plan.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from tndiag.codegen.lowerings import RULES
from tndiag.codegen.lowerings.base import Match, State, StepRule, nominal
from tndiag.codegen.lowerings.contraction import CONTRACTION, path_cost
from tndiag.codegen.program import Operand, Step
from tndiag.ir.sizes import Size

__all__ = ["lower", "STEP_OVERHEAD_FLOPS"]

#: A step's fixed cost (dispatch, allocation) in FLOP equivalents, when comparing a one-step
#: structured lowering with a multi-step einsum path (about 10 µs at 10 GFLOP/s).
STEP_OVERHEAD_FLOPS = 100_000


def _einsum_alternative(state: State, match: Match) -> int:
    """FLOPs of the plain einsum of the match's operands (dense Π) plus step overheads."""
    subs = [state.entry(u).letters for u in match.uids]
    if len(subs) == 1:
        return 0
    path, flops = path_cost(subs, match.result, state.sizes)
    return flops + STEP_OVERHEAD_FLOPS * (len(path) - 1)


def _accept(state: State, rule: StepRule, match: Match) -> bool:
    """A free step, or one no dearer than its einsum (a result repeating a letter, a
    diagonal only the structured step can keep, has no einsum to compare with)."""
    price = nominal(rule.cost(state, match))
    if price == 0 or len(set(match.result)) != len(match.result):
        return True
    return price <= _einsum_alternative(state, match)


def _apply_rule(state: State, rule: StepRule) -> None:
    rejected: List[Match] = []
    while True:
        found = [m for m in rule.match(state) if m not in rejected]
        if not found:
            return
        if _accept(state, rule, found[0]):
            rule.apply(state, found[0])
        else:
            rejected.append(found[0])


def lower(operands: Sequence[Operand], out: str,
          allowed: Tuple[str, ...]) -> Tuple[List[Step], List[Operand], float,
                                             Tuple[Size, Size, Size]]:
    """Plan the steps of one graph's operands.

    Returns:
        ``(steps, final operands, extra scalar factor, (flops, largest intermediate,
        peak memory))``.

    >>> from tndiag.codegen.program import Operand
    >>> from tndiag.ir import Index, variable
    >>> x = variable("X", [Index("a", 2), Index("b", 3)])
    >>> steps, _, _, costs = lower([Operand(x, "ab", (2, 3), "input")], "a", ())
    >>> [s.equation for s in steps], costs
    (['ab->a'], (12, 2, 2))
    """
    state = State.of(operands, out, allowed)
    for rule in RULES:
        if rule.name in allowed:
            _apply_rule(state, rule)
    for match in CONTRACTION.match(state):
        CONTRACTION.apply(state, match)
    for finish in state.deferred:
        finish(state)
    return state.steps, state.ops, state.scale, state.costs()
