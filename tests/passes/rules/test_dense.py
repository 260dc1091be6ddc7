"""Dense rule (docs/method.md §4.1): K == S, no padding, D == 1, I % K == 0 → reshape + matmul."""

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from rewrite_checks import apply, assert_same_value, run_checked

from tndiag import ops
from tndiag.ir import Graph, Index, Kind, delta, pattern, reduced_pattern, variable


def fired(result):
    return [(e.rule, e.tensors) for t in result.traces for e in t.fired]


def skipped(result):
    return [e.detail for t in result.traces for e in t.events if e.status == "skipped"]


def test_golden_convnext_stem_224():
    """ConvNeXt stem: 4×4 kernel, stride 4, 224×224 input (batch 1, few channels)."""
    g = ops.conv((1, 3, 224, 224), (8, 3, 4, 4), stride=4)
    res = run_checked(g, "dense")
    assert fired(res) == [("dense", ("P1",)), ("dense", ("P2",))]
    n, ci, co = Index("n", 1), Index("ci", 3), Index("co", 8)
    o1, o2, k1, k2 = Index("o1", 56), Index("o2", 56), Index("k1", 4), Index("k2", 4)
    a1, b1 = Index("i1_o", 56), Index("i1_k", 4)
    a2, b2 = Index("i2_o", 56), Index("i2_k", 4)
    want = Graph.of([variable("X", [n, ci, (a1, b1), (a2, b2)]),
                     delta("P1_o", [o1, a1]), delta("P1_k", [k1, b1]),
                     delta("P2_o", [o2, a2]), delta("P2_k", [k2, b2]),
                     variable("W", [co, ci, k1, k2], "parameter")], [n, co, o1, o2])
    assert res.diagram == want
    assert res.diagram.tensors[0].shape == (1, 3, 224, 224)


def test_convnext_stem_224_value():
    g = ops.conv((1, 3, 224, 224), (2, 3, 4, 4), stride=4)
    assert_same_value(g, apply("dense", g))


def test_after_delta_pruning_it_is_a_reshape_and_matmul():
    g = ops.conv((2, 3, 16, 16), (8, 3, 4, 4), stride=4)
    out = run_checked(g, "dense,delta-pruning").diagram
    n, ci, co = Index("n", 2), Index("ci", 3), Index("co", 8)
    o1, o2, k1, k2 = Index("o1", 4), Index("o2", 4), Index("k1", 4), Index("k2", 4)
    assert out == Graph.of([variable("X", [n, ci, (o1, k1), (o2, k2)]),
                            variable("W", [co, ci, k1, k2], "parameter")], [n, co, o1, o2])
    assert_same_value(g, out)


def test_identity_1x1():
    g = ops.conv((2, 3, 5), (4, 3, 1))
    out = apply("dense", g)
    assert [t.kind for t in out.tensors] == [Kind.VARIABLE, Kind.DELTA, Kind.DELTA,
                                             Kind.VARIABLE]
    assert_same_value(g, out)


@pytest.mark.parametrize("make", [
    lambda: ops.conv((2, 3, 16), (4, 3, 4), stride=4, padding=1),     # padding
    lambda: ops.conv((2, 3, 16), (4, 3, 4), stride=4, dilation=2),    # dilation
    lambda: ops.conv((2, 3, 16), (4, 3, 4), stride=2),                # K != S
    lambda: ops.conv((2, 3, 18), (4, 3, 4), stride=4),                # I % K != 0
    lambda: ops.conv((2, 3, 16), (4, 3, 3)),                          # general
])
def test_does_not_fire(make):
    g = make()
    res = run_checked(g, "dense")
    assert res.diagram == g and not fired(res) and not skipped(res)


def test_does_not_fire_when_i_is_on_another_structured_tensor():
    i, j, o, k = Index("i", 8), Index("j", 8), Index("o", 2), Index("k", 4)
    g = Graph.of([variable("X", [j]), delta("D", [i, j]), pattern("P", i, o, k, stride=4),
                  variable("W", [k])], [o])
    assert run_checked(g, "dense").diagram == g


def test_symbolic_kernel_is_undecidable():
    res = run_checked(ops.conv(ndim=1, stride=2), "dense")
    assert not fired(res)
    assert skipped(res) == ["cannot decide K == S (K1 == 2) with symbolic sizes"]


def test_symbolic_input_size():
    g = ops.conv(("N", 3, "I1"), (4, 3, 4), stride=4)
    res = run_checked(g, "dense")
    assert not fired(res)
    assert skipped(res) == ["cannot decide I % K == 0 (I1 % 4) with symbolic sizes"]
    M = sympy.Symbol("M", integer=True, positive=True)
    g = ops.conv(("N", 3, 4 * M), (4, 3, 4), stride=4)
    res = run_checked(g, "dense")
    assert fired(res) == [("dense", ("P1",))]
    assert res.diagram.index("i1_o").size == M
    assert_same_value(g, res.diagram, sizes={"N": 2, "M": 3})


def test_symbolic_mismatch_is_decided():
    """K == S fails definitely for K = 3, S = 4 even when I is symbolic: no skip event."""
    res = run_checked(ops.conv(("N", 3, "I1"), (4, 3, 3), stride=4), "dense")
    assert not fired(res) and not skipped(res)


def test_open_i_leg_transposed_conv():
    """i is an output leg of a transposed convolution: the output axis becomes fused."""
    g = ops.conv_transpose((2, 3, 5), (3, 2, 3), stride=3)
    out = apply("dense", g)
    assert [len(axis) for axis in out.output] == [1, 1, 2]
    assert out.output_shape == g.output_shape
    assert_same_value(g, out)


@given(N=st.integers(1, 2), C=st.integers(1, 3), K=st.integers(1, 4), m=st.integers(1, 4),
       groups=st.sampled_from([1, 2]), transposed=st.booleans())
def test_preserves_value(N, C, K, m, groups, transposed):
    if transposed:
        g = ops.conv_transpose((N, 2 * C, m), (2 * C, 2, K), stride=K, groups=groups)
    else:
        g = ops.conv((N, 2 * C, m * K), (2, 2 * C // groups, K), stride=K, groups=groups)
    res = run_checked(g, "dense")
    assert fired(res) == [("dense", ("P1",))]
    assert_same_value(g, res.diagram)


def test_golden_reduced_pattern():
    """Σ_o of a dense Π is δ(k, k̃) with ĩ summed: KFAC-reduce of a dense convolution."""
    n, i, k = Index("n", 2), Index("i", 8), Index("k", 4)
    g = Graph.of([variable("X", [n, i]), reduced_pattern("R", i, k, 2, stride=4)], [k])
    res = run_checked(g, "dense")
    a, b = Index("i_o", 2), Index("i_k", 4)
    assert res.diagram == Graph.of([variable("X", [n, (a, b)]), delta("R_k", [k, b])], [k])
    assert_same_value(g, res.diagram)


def test_reduced_pattern_with_lonely_open_i_does_not_fire():
    i, k = Index("i", 8), Index("k", 4)
    g = Graph.of([variable("W", [k]), reduced_pattern("R", i, k, 2, stride=4)], [i])
    assert apply("dense", g) == g


def test_kfac_reduce_of_convnext_stem():
    g = ops.kfac_reduce((2, 3, 8, 8), 4, stride=4)
    res = run_checked(g, "simplify")
    assert {t.kind for t in res.diagram.tensors} == {Kind.VARIABLE, Kind.CONSTANT}
    assert_same_value(g, res.diagram)
