"""``fold-constant``: a constant fill whose legs all lie on other operands is a scalar factor.

``c · Π_j T_j`` with ``c`` filled with one value equals ``value · Π_j T_j`` whenever every leg
of ``c`` is also on some ``T_j`` (the fill broadcasts). The operand disappears; no step.
"""

from __future__ import annotations

from typing import List

from tndiag.codegen.lowerings.base import Match, State, StepRule
from tndiag.codegen.program import LoweringKind

__all__ = ["RULE"]


def _match(state: State) -> List[Match]:
    """The last foldable fill (planning starts over after each fold)."""
    if len(state.steps) or len(state.ops) < 2:
        return []
    for n in reversed(range(len(state.ops))):
        op = state.ops[n]
        others = "".join(o.letters for m, o in enumerate(state.ops) if m != n)
        if op.lowering is LoweringKind.FILL and all(ch in others for ch in op.letters):
            return [Match((n,), "")]
    return []


def _apply(state: State, match: Match) -> None:
    (n,) = match.uids
    state.scale *= state.ops[n].tensor.fill_value
    del state.ops[n]
    state.restack()


def _cost(state: State, match: Match) -> int:
    return 0


RULE = StepRule("fold-constant", None, _match, _apply, _cost,
                "a constant whose legs all lie on other operands becomes a scalar factor")
