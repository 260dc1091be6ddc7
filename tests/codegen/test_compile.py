"""Edge cases of ``tndiag.compile``: δ factors no operand carries, empty products, scalars.

Values are compared with the brute-force oracle of ``tests/rewrite_checks.py`` (dense
tensors, one ``torch.einsum`` per diagram, no tndiag codegen) and with hand-computed numbers.
"""

import sys
from pathlib import Path

import pytest
import torch

import tndiag
from tndiag.ir import Graph, Index, Sum, constant, delta, variable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rewrite_checks import dense_evaluate  # noqa: E402

LOWERINGS = [None, ()]  # structured (default) and the dense fallback
e, a, b = Index("e", 2), Index("a", 3), Index("b", 3)


@pytest.mark.parametrize("lowerings", LOWERINGS)
@pytest.mark.parametrize("output", [[e], [e, a], [a, e], [e, b]])
def test_delta_with_legs_on_no_other_tensor(lowerings, output):
    g = Graph.of([variable("X", [e]), delta("D", [a, b])], output)
    x = torch.randn(2)
    got = tndiag.compile(g, lowerings=lowerings)(x)
    want = dense_evaluate(g, {"X": x})
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    if output == [e]:  # traced δ: its size as a factor
        torch.testing.assert_close(got, 3 * x, rtol=1e-12, atol=0)


@pytest.mark.parametrize("lowerings", LOWERINGS)
def test_scalar_only_graphs(lowerings):
    half = Graph.of([constant("c", 0.5)], [])
    assert tndiag.compile(half, lowerings=lowerings)().item() == 0.5
    traced = Graph.of([constant("c", 0.5), delta("D", [a, b])], [])
    assert tndiag.compile(traced, lowerings=lowerings)().item() == 1.5
    empty = Graph.of([], [])
    assert tndiag.compile(empty, lowerings=lowerings)().item() == 1.0


@pytest.mark.parametrize("lowerings", LOWERINGS)
def test_sum_with_an_empty_product_term(lowerings):
    x, v = torch.randn(2), torch.randn(2)
    s = Sum((Graph.of([variable("X", [e]), variable("V", [e], "vector")], []), Graph.of([], [])))
    got = tndiag.compile(s, lowerings=lowerings)(X=x, V=v)
    torch.testing.assert_close(got, x @ v + 1, rtol=1e-12, atol=0)


def test_every_step_kind_has_a_backend_runner_and_every_emitted_step_a_kind():
    from tests.corpus import IDS, build
    from tndiag.backends.torch_native import PREPARERS
    from tndiag.codegen.program import StepKind

    assert set(PREPARERS) == set(StepKind)
    seen = set()
    for case in IDS:
        prog = tndiag.codegen.plan(build(case))
        for term in getattr(prog, "terms", (prog,)):
            seen |= {type(step.kind) for step in term.steps}
    assert seen == {StepKind}
