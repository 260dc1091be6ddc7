"""Down-sampling (docs/method.md §4.2) and mixed-dense (§4.3) rules."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from rewrite_checks import assert_same_value, evaluate, random_inputs, run_checked

from tndiag import ops
from tndiag.ir import Graph, Index, Kind, delta, reduced_pattern, variable
from tndiag.passes.rules.downsample import down_sampling, mixed_dense


def fired(result):
    return [(e.rule, e.tensors) for t in result.traces for e in t.fired]


def skipped(result):
    return [e.detail for t in result.traces for e in t.events if e.status == "skipped"]


def test_golden_resnet_shortcut():
    """ResNet 1×1 stride-2 shortcut (56×56 input, batch 2, few channels)."""
    g = ops.conv((2, 4, 56, 56), (8, 4, 1, 1), stride=2)
    res = run_checked(g, "down-sampling")
    assert fired(res) == [("down-sampling", ("P1",)), ("down-sampling", ("P2",))]
    n, ci, co = Index("n", 2), Index("ci", 4), Index("co", 8)
    o1, o2, k1, k2 = Index("o1", 28), Index("o2", 28), Index("k1", 1), Index("k2", 1)
    a1, s1 = Index("i1_o", 28), Index("i1_s", 2)
    a2, s2 = Index("i2_o", 28), Index("i2_s", 2)
    want = Graph.of([variable("X", [n, ci, (a1, s1), (a2, s2)]),
                     delta("P1_o", [o1, a1]), reduced_pattern("P1", s1, k1, 1, stride=2),
                     delta("P2_o", [o2, a2]), reduced_pattern("P2", s2, k2, 1, stride=2),
                     variable("W", [co, ci, k1, k2], "parameter")], [n, co, o1, o2])
    assert res.diagram == want


def test_resnet_shortcut_is_slice_plus_matmul():
    """Independent oracle: X[..., ::2, ::2] followed by a 1×1 matmul."""
    g = ops.conv((2, 4, 56, 56), (8, 4, 1, 1), stride=2)
    out = run_checked(g, "simplify").diagram
    inputs = random_inputs(g)
    x, w = inputs["X"], inputs["W"]
    want = torch.einsum("ncij,oc->noij", x[:, :, ::2, ::2], w[:, :, 0, 0])
    assert torch.allclose(evaluate(out, inputs), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: ops.conv((2, 3, 8), (4, 3, 1), stride=2, padding=1),      # padding
    lambda: ops.conv((2, 3, 8), (4, 3, 2), stride=3, dilation=2),     # dilation
    lambda: ops.conv((2, 3, 9), (4, 3, 1), stride=2),                 # I % S != 0
    lambda: ops.conv((2, 3, 8), (4, 3, 2), stride=2),                 # S == K (dense)
    lambda: ops.conv_transpose((2, 3, 4), (3, 2, 1), stride=2),       # i is an output leg
])
def test_does_not_fire(make):
    g = make()
    res = run_checked(g, "down-sampling")
    assert res.diagram == g and not fired(res) and not skipped(res)


def test_symbolic_is_undecidable():
    res = run_checked(ops.conv(("N", 3, "I1"), (4, 3, 1), stride=2), "down-sampling")
    assert not fired(res)
    assert skipped(res) == ["cannot decide I % S == 0 (I1 % 2) with symbolic sizes"]
    res = run_checked(ops.conv(ndim=1, stride=3), "down-sampling")
    assert skipped(res) == ["cannot decide S > K (3 > K1) with symbolic sizes"]


def test_golden_inception_1x7_mixed_dense():
    """Inception 1×7 with padding (0, 3): dense along the first dimension only."""
    g = ops.conv((2, 4, 17, 17), (4, 4, 1, 7), padding=(0, 3))
    res = run_checked(g, "mixed-dense")
    assert fired(res) == [("dense", ("P1",))]
    kinds = {t.name: t.kind for t in res.diagram.tensors}
    assert kinds == {"X": Kind.VARIABLE, "P1_o": Kind.DELTA, "P1_k": Kind.DELTA,
                     "P2": Kind.PATTERN, "W": Kind.VARIABLE}
    assert res.diagram.tensors[0].axes[2] == (Index("i1_o", 17), Index("i1_k", 1))
    assert_same_value(g, res.diagram)


def test_mixed_dense_and_down_sampling():
    g = ops.conv((2, 3, 8, 6), (4, 3, 1, 2), stride=(2, 2))
    res = run_checked(g, "mixed-dense")
    assert sorted(fired(res)) == [("dense", ("P2",)), ("down-sampling", ("P1",))]
    assert_same_value(g, res.diagram)


@given(N=st.integers(1, 2), C=st.integers(1, 3), K=st.integers(1, 3), extra=st.integers(1, 2),
       m=st.integers(1, 4), groups=st.sampled_from([1, 2]))
def test_preserves_value(N, C, K, extra, m, groups):
    S = K + extra
    g = ops.conv((N, 2 * C, m * S), (2, 2 * C // groups, K), stride=S, groups=groups)
    res = run_checked(g, "down-sampling")
    assert fired(res) == [("down-sampling", ("P1",))]
    assert_same_value(g, res.diagram)


def test_golden_reduced_pattern_and_no_loop():
    """Σ_o of a down-sampling Π is the selection alone; the selection itself (I == S) stays."""
    n, i, k = Index("n", 2), Index("i", 9), Index("k", 2)
    g = Graph.of([variable("X", [n, i]), reduced_pattern("R", i, k, 3, stride=3)], [k])
    res = run_checked(g, "down-sampling")
    assert fired(res) == [("down-sampling", ("R",))]
    a, s = Index("i_o", 3), Index("i_s", 3)
    assert res.diagram == Graph.of([variable("X", [n, (a, s)]),
                                    reduced_pattern("R", s, k, 1, stride=3)], [k])
    assert_same_value(g, res.diagram)


def test_kfac_reduce_of_resnet_shortcut():
    g = ops.kfac_reduce((2, 4, 8, 8), 1, stride=2)
    res = run_checked(g, "simplify")
    assert [e.rule for e in res.traces[0].fired] == ["down-sampling"] * 4
    assert_same_value(g, res.diagram)


def test_passes_by_name():
    g = ops.conv((1, 2, 6), (2, 2, 1), stride=3)
    assert down_sampling(g) == mixed_dense(g) != g
