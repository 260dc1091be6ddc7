"""The lowering engine's tables are complete: every step kind has a rule that emits it (with a
cost), a backend preparer and an export emitter; every materialized operand lowering has a
builder; every rule is allowed by one name."""

import pytest

from tndiag import compile, ops
from tndiag.backends.torch import FROM_POSITIONS
from tndiag.backends.torch_export import EMITTERS
from tndiag.backends.torch_native import MATERIALIZERS, PREPARERS
from tndiag.codegen.lowering import STRUCTURED
from tndiag.codegen.lowerings import RULES, STEP_RULES, TERM_RULES
from tndiag.codegen.lowerings.base import State
from tndiag.codegen.program import LoweringKind, StepKind
from tndiag.codegen.rewrite import REWRITES


@pytest.mark.parametrize("kind", list(StepKind), ids=lambda k: k.value)
def test_every_step_kind_has_a_rule_a_cost_a_preparer_and_an_emitter(kind):
    rule = STEP_RULES[kind]
    assert rule.kind is kind and callable(rule.match) and callable(rule.apply)
    assert callable(rule.cost)
    assert callable(PREPARERS[kind]) and callable(EMITTERS[kind])


@pytest.mark.parametrize("lowering", list(LoweringKind), ids=lambda k: k.value)
def test_every_operand_lowering_is_built_given_or_consumed(lowering):
    """An operand is the user's tensor, lives inside a step, has a builder or is built from
    the kept positions of the call; a δ merged into a letter or a scalar constant never
    becomes an operand."""
    kinds = [lowering is LoweringKind.INPUT, lowering.consumed, lowering in MATERIALIZERS,
             lowering in FROM_POSITIONS, lowering in (LoweringKind.MERGE, LoweringKind.SCALE)]
    assert kinds.count(True) == 1


def test_every_rule_is_named_once_in_the_allowed_names():
    names = [r.name for r in RULES + TERM_RULES]
    assert len(set(names)) == len(names)
    assert STRUCTURED == REWRITES + tuple(names)


def test_no_rule_matches_outside_its_name():
    """With ``lowerings=()`` no step but einsum and no rewrite: plain einsum, dense Π."""
    program = compile(ops.kfac_reduce((2, 3, 6, 6), 3, padding=1), lowerings=())
    assert {s.kind for s in program.steps} == {StepKind.EINSUM} and not program.rewrites
    dense = compile(ops.conv((2, 3, 8), (4, 3, 3)), lowerings=())
    assert LoweringKind.DENSE_PATTERN in [op.lowering for op in dense.operands]


def test_state_operations_keep_uids_stable():
    from tndiag.codegen.program import Operand
    from tndiag.ir import Index, variable
    a, b = Index("a", 2), Index("b", 3)
    ops_ = [Operand(variable("X", [a]), "a", (2,), "input"),
            Operand(variable("Y", [a, b]), "ab", (2, 3), "input")]
    state = State.of(ops_, "b", ())
    state.push([1, 0], "b", StepKind.EINSUM, None, "einsum", 12)
    assert [e.uid for e in state.stack] == [2]
    assert state.steps[0].positions == (1, 0) and state.steps[0].equation == "ab,a->b"
