"""Every registered pass keeps the value of random diagrams (dense oracle), and the
derivative and expansion passes compute what their definitions say (autograd, slices)."""

import pytest
import torch
from diagram_checks import inputs_for as random_inputs
from hypothesis import assume, given
from hypothesis import strategies as st
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, diagrams

import tndiag
from tndiag.ir import Sum, verify
from tndiag.passes.base import PASSES

#: Passes whose result has the same value as their input.
VALUE_PRESERVING = sorted(name for name, p in PASSES.items() if not p.options)
#: Passes computing something else, each checked below against its own definition.
DEFINED_ELSEWHERE = {"differentiate", "vjp", "jvp", "expand-groups", "expand-batch",
                     "subsample"}  # tests/passes/test_subsample.py


def test_every_registered_pass_is_checked():
    assert set(PASSES) == set(VALUE_PRESERVING) | DEFINED_ELSEWHERE


@oracle_settings()
@given(diagrams())
def test_value_preserving_passes_keep_the_value(diagram):
    inputs = random_inputs(diagram)
    want = dense_value(diagram, inputs)
    for name in VALUE_PRESERVING:
        result = verify(PASSES[name](diagram))
        assert_matches_oracle(dense_value(result, inputs), want, name)


@oracle_settings()
@given(diagrams())
def test_canonicalize_is_idempotent(diagram):
    once = tndiag.canonicalize(diagram)
    assert tndiag.canonicalize(once) == once


@oracle_settings()
@given(diagrams())
def test_text_round_trip_keeps_the_value(diagram):
    back = tndiag.parse(tndiag.to_text(diagram))
    inputs = random_inputs(diagram)
    assert_matches_oracle(dense_value(back, inputs), dense_value(diagram, inputs),
                          "parse(to_text(g))")


def _variables(diagram):
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    return sorted({t.name for term in terms for t in term.variables()})


def _one_variable(diagram, data):
    """A variable name of ``diagram`` drawn by hypothesis (examples without one are skipped)."""
    names = _variables(diagram)
    assume(names)
    return data.draw(st.sampled_from(names))


def _function_of(diagram, name, inputs):
    def f(x):
        return dense_value(diagram, {**inputs, name: x})
    return f


@oracle_settings()
@given(diagrams(), st.data())
def test_vjp_and_jvp_match_autograd(diagram, data):
    name = _one_variable(diagram, data)
    inputs = random_inputs(diagram)
    f = _function_of(diagram, name, inputs)
    y = f(inputs[name])
    v = torch.randn(y.shape, dtype=torch.float64)
    t = torch.randn(inputs[name].shape, dtype=torch.float64)
    _, want_vjp = torch.autograd.functional.vjp(f, inputs[name], v)
    _, want_jvp = torch.autograd.functional.jvp(f, inputs[name], t)
    vjp = verify(tndiag.vjp(diagram, (name,), "V_vjp"))
    jvp = verify(tndiag.jvp(diagram, (name,), ("T_jvp",)))
    assert_matches_oracle(dense_value(vjp, {**inputs, "V_vjp": v}), want_vjp, f"vjp wrt {name}")
    assert_matches_oracle(dense_value(jvp, {**inputs, "T_jvp": t}), want_jvp, f"jvp wrt {name}")


@oracle_settings()
@given(diagrams(), st.data())
def test_differentiate_matches_the_autograd_jacobian(diagram, data):
    name = _one_variable(diagram, data)
    inputs = random_inputs(diagram)
    want = torch.autograd.functional.jacobian(_function_of(diagram, name, inputs), inputs[name])
    jac = verify(tndiag.differentiate(diagram, (name,)))
    got = dense_value(jac, inputs)
    assert_matches_oracle(got.reshape(want.shape), want, f"jacobian wrt {name}")


@oracle_settings()
@given(diagrams(), st.data())
def test_expand_batch_maps_the_diagram_over_slices(diagram, data):
    names = _variables(diagram)
    assume(names)
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    expanded = verify(PASSES["expand-batch"](diagram, size="3", tensors=tuple(chosen),
                                             index="nb"))
    inputs = random_inputs(expanded, seed=1)
    got = dense_value(expanded, inputs)
    for b in range(3):
        sliced = {n: (x[b] if n in chosen else x) for n, x in inputs.items()}
        assert_matches_oracle(got[b], dense_value(diagram, sliced), f"expand-batch slice {b}")


@pytest.mark.parametrize("stride, size, want", [(1, 2, 2.0), (2, 4, 4.0), (2, 6, 6.0)])
def test_dense_rule_keeps_the_free_sum_of_a_reduced_pattern(stride, size, want):
    """Regression: the dense rule replaced a reduced pattern whose i leg is on no other
    tensor by δ(k, k̃) and lost the sum over ĩ (1.0 instead of 2.0)."""
    g = tndiag.parse(f"index a: {size}, b: {stride}\nX : input []\n"
                     f"R0 = reduced(a, b; stride={stride})\nY[] = X * R0\n")
    one = torch.tensor(1.0)
    assert dense_value(g, {"X": one}).item() == want
    assert tndiag.compile(tndiag.simplify(g))(X=one).item() == want
