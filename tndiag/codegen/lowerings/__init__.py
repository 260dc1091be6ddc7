"""The structured lowerings, one :class:`~tndiag.codegen.lowerings.base.StepRule` per module.

:data:`RULES` are applied in order to the operands of one graph by the driver
(:mod:`tndiag.codegen.engine`), before the contraction path; :data:`TERM_RULES` combine the
compiled terms of a sum (:mod:`tndiag.codegen.fuse`). :data:`STEP_RULES` names, per step
kind, the rule that emits it (``einsum`` steps come from the contraction path).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from tndiag.codegen.lowerings import (
    bias,
    broadcast,
    fold_constant,
    gather,
    gram,
    native,
    patch_gram,
    scatter,
    square,
    view,
    window_sum,
)
from tndiag.codegen.lowerings.base import State, StepRule
from tndiag.codegen.lowerings.contraction import CONTRACTION
from tndiag.codegen.program import Program, StepKind

__all__ = ["RULES", "TERM_RULES", "STEP_RULES"]

#: Rules on the operands of one graph, in the order the driver applies them.
RULES: Tuple[StepRule[State], ...] = (fold_constant.RULE, gather.RULE, patch_gram.RULE,
                                      gram.RULE, square.RULE, native.RULE, window_sum.RULE,
                                      view.RULE, scatter.RULE)

#: Rules on the compiled terms of a sum, in order.
TERM_RULES: Tuple[StepRule[List[Program]], ...] = (broadcast.RULE, bias.RULE)

_EMITTING: Tuple[StepRule[Any], ...] = (CONTRACTION, *RULES, broadcast.RULE)

#: Step kind -> the rule that emits it (a test checks every kind has one).
STEP_RULES: Dict[StepKind, StepRule[Any]] = {r.kind: r for r in _EMITTING if r.kind is not None}
