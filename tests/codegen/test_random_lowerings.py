"""``compile`` equals the dense oracle on random diagrams, with every lowering subset.

Each structured lowering is checked alone (the others off), all together and none at all,
on the drawn diagram and on its simplified form (where the structured lowerings mostly fire).
"""

import pytest
import torch
from diagram_checks import inputs_for as random_inputs
from hypothesis import given
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, diagrams

import tndiag
from tndiag.codegen.lowering import STRUCTURED

SUBSETS = [None, ()] + [(name,) for name in STRUCTURED]


def _check(diagram, lowerings):
    inputs = random_inputs(diagram)
    want = dense_value(diagram, inputs)
    program = tndiag.compile(diagram, lowerings=lowerings)
    got = program(**{name: inputs[name] for name in program.inputs})
    assert_matches_oracle(got, want, f"lowerings={lowerings}\n{program}")


@oracle_settings()
@given(diagrams())
def test_compile_matches_dense_oracle_for_every_lowering_subset(diagram):
    for lowerings in SUBSETS:
        _check(diagram, lowerings)


@oracle_settings()
@given(diagrams())
def test_compile_of_simplified_diagram_matches_dense_oracle(diagram):
    simple = tndiag.simplify(diagram)
    for lowerings in SUBSETS:
        _check(simple, lowerings)


@pytest.mark.parametrize("lowerings", SUBSETS, ids=str)
def test_delta_joining_pattern_legs_is_not_viewed(lowerings):
    """Regression: a δ joining a pattern's i and k legs gives subscripts like ``aba``; the
    view lowering used to emit ``ba,aba->bba`` and return 8 instead of 7."""
    g = tndiag.parse("index c: 2, a: 2\nD0 = delta [c, a]\n"
                     "P0 = pattern(a -> b, c; padding=(1, 0))\n"
                     "X : parameter [b, a]\nY[] = D0 * P0 * X\n")
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert dense_value(g, {"X": x}).item() == 7.0
    assert tndiag.compile(g, lowerings=lowerings)(X=x).item() == 7.0


@pytest.mark.parametrize("lowerings", SUBSETS, ids=str)
def test_dense_pattern_with_free_o_and_k_is_not_reshaped(lowerings):
    """Regression (found by the random diagrams): a dense pattern whose i leg is open and
    whose o and k legs are on no other tensor sums to ones; the reshape lowering split the
    output leg into letters no operand carried (opt_einsum raised)."""
    g = tndiag.parse("index i: 4, o: 2, k: 2, n: 3\nX : input [n]\n"
                     "P = pattern(i -> o, k; stride=2)\nY[n, i] = X * P\n")
    x = torch.arange(3.0)
    want = dense_value(g, {"X": x})
    torch.testing.assert_close(tndiag.compile(g, lowerings=lowerings)(X=x), want)
