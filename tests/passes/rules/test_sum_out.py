"""Sum-out: Π with a free o leg becomes the reduced pattern Σ_o Π (docs/method.md §4.7)."""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from rewrite_checks import apply, assert_same_value, evaluate, random_inputs, run_checked

from tndiag import ops
from tndiag.ir import Graph, Index, Kind, constant, pattern, reduced_pattern, variable


def kfac_reduce_diagram(N, C, I, K, S=1, P=0, D=1):
    """Two copies of X, each with its own Π and its own (free) o leg, as in KFAC-reduce."""
    n, c, d = Index("n", N), Index("c", C), Index("d", C)
    i, j, k, l = Index("i", I), Index("j", I), Index("k", K), Index("l", K)
    O = pattern("P", i, Index("o", 1), k, S, P, P, D).params.output_size(I, K)
    o, p = Index("o", O), Index("p", O)
    return Graph.of([variable("X", [n, c, i]), pattern("P", i, o, k, S, P, P, D),
                     pattern("Q", j, p, l, S, P, P, D), variable("X", [n, d, j])],
                    [(c, k), (d, l)])


def test_golden_kfac_reduce():
    g = kfac_reduce_diagram(2, 3, 7, 3, S=2, P=1)
    res = run_checked(g, "sum-out")
    n, c, d = Index("n", 2), Index("c", 3), Index("d", 3)
    i, j, k, l = Index("i", 7), Index("j", 7), Index("k", 3), Index("l", 3)
    want = Graph.of([variable("X", [n, c, i]), reduced_pattern("P", i, k, 4, 2, 1, 1),
                     reduced_pattern("Q", j, l, 4, 2, 1, 1), variable("X", [n, d, j])],
                    [(c, k), (d, l)])
    assert res.diagram == want
    assert [(e.rule, e.tensors, e.indices) for e in res.traces[0].fired] == [
        ("sum-out", ("P",), ("o",)), ("sum-out", ("Q",), ("p",))]


def test_kfac_reduce_matches_unfold_reference():
    """Independent oracle: Σ_n (Σ_o U[n,:,o]) (Σ_o U[n,:,o])ᵀ with U = F.unfold(X)."""
    g = kfac_reduce_diagram(3, 2, 8, 3, S=2, P=1, D=2)
    after = apply("sum-out", g)
    x = random_inputs(g)["X"]
    u = torch.nn.functional.unfold(x.unsqueeze(-1), (3, 1), dilation=(2, 1), padding=(1, 0),
                                   stride=(2, 1)).sum(-1)
    want = torch.einsum("na,nb->ab", u, u)
    got = evaluate(after, {"X": x})
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_does_not_fire_on_forward_conv():
    g = ops.conv((2, 3, 8), (4, 3, 3))
    res = run_checked(g, "sum-out")
    assert res.diagram == g and not res.traces[0].events


def test_does_not_fire_when_o_is_joined_or_open():
    i, o, k = Index("i", 5), Index("o", 3), Index("k", 3)
    joined = Graph.of([variable("X", [i]), pattern("P", i, o, k), variable("V", [o])], [k])
    opened = Graph.of([variable("X", [i]), pattern("P", i, o, k)], [o, k])
    for g in (joined, opened):
        assert apply("sum-out", g) == g


def test_symbolic_sizes_fire():
    """The precondition is structural: it holds for symbolic sizes too."""
    i, k = Index("i", "I"), Index("k", "K")
    P = pattern("P", i, Index("o", "O"), k)
    o = Index("o", P.params.output_size(i.size, k.size))
    g = Graph.of([variable("X", [i]), pattern("P", i, o, k), constant("c", 2.0)], [k])
    out = run_checked(g, "sum-out").diagram
    assert out.tensors[1].kind is Kind.REDUCED and out.tensors[1].out_size == o.size
    assert_same_value(g, out, sizes={"I": 9, "K": 4})


@given(N=st.integers(1, 2), C=st.integers(1, 2), I=st.integers(1, 9), K=st.integers(1, 4),
       S=st.integers(1, 3), P=st.integers(0, 2), D=st.integers(1, 2))
def test_preserves_value(N, C, I, K, S, P, D):
    assume(I + 2 * P >= D * (K - 1) + 1)
    g = kfac_reduce_diagram(N, C, I, K, S, P, D)
    res = run_checked(g, "sum-out")
    assert sum(t.kind is Kind.REDUCED for t in res.diagram.tensors) == 2
    assert_same_value(g, res.diagram)


@pytest.mark.parametrize("pipeline", ["sum-out", "simplify"])
def test_pipeline_names(pipeline):
    g = kfac_reduce_diagram(1, 1, 5, 2)
    assert run_checked(g, pipeline).diagram.tensors[1].kind is Kind.REDUCED
