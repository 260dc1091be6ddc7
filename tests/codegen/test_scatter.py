"""The scatter (col2im) lowering of fold-like patterns against torch and the dense Π (float64)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tndiag import compile, export, ops
from tndiag.codegen.lowering import STRUCTURED
from tndiag.ir import Graph, Index, pattern, variable


def _blocks(I, K, S, P, D):
    return [(i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in zip(I, K, S, P, D)]


def _fold_case(I, K, S, P, D, batch=2, channels=3):
    L = 1
    for o in _blocks(I, K, S, P, D):
        L *= o
    C = channels
    for k in K:
        C *= k
    graph = ops.fold((batch, C, L), I, K, dilation=D, padding=P, stride=S)
    return graph, torch.randn(batch, C, L)


#: Every lowering but torch's kernels: the scatter kernel even where col2im would win.
NO_NATIVE = tuple(name for name in STRUCTURED if name != "native")


def _check_scatter(graph, x):
    """Scatter (torch's fold, ``col2im``, where the cost model picks it; the per-tap adds
    without torch's kernels), or the dense rewrite when the fold is a plain reshape (S = K,
    no padding): each against the dense Π."""
    dense = compile(graph, lowerings=())(x)
    values = []
    for prog in (compile(graph), compile(graph, lowerings=NO_NATIVE)):
        lowerings = {op.lowering for op in prog.operands if op.tensor.kind.value == "pattern"}
        labels = [s.label for s in prog.steps]
        assert lowerings <= {"scatter"}
        assert ("scatter" in lowerings) == bool({"scatter", "col2im"} & set(labels))
        values.append(prog(x))
        torch.testing.assert_close(values[-1], dense, rtol=1e-10, atol=1e-10)
    assert "col2im" not in [s.label for s in prog.steps]  # the last: without torch's kernels
    return values[0]


GRID_2D = [  # (I, K, S, P, D)
    ((8, 8), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((9, 7), (2, 3), (2, 1), (0, 1), (1, 1)),
    ((10, 10), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((11, 9), (3, 2), (3, 2), (2, 0), (2, 1)),
    ((6, 6), (2, 2), (2, 2), (0, 0), (1, 1)),
    ((7, 8), (1, 3), (1, 2), (0, 1), (1, 2)),
    ((12, 12), (5, 5), (4, 4), (2, 2), (1, 1)),
]


@pytest.mark.parametrize("I,K,S,P,D", GRID_2D)
def test_fold_2d_matches_torch(I, K, S, P, D):
    graph, x = _fold_case(I, K, S, P, D)
    got = _check_scatter(graph, x)
    dense_reshape = S == K and P == (0, 0) and D == (1, 1)
    label = [s.label for s in compile(graph).steps][0]
    assert label == "einsum" if dense_reshape else label in ("scatter", "col2im")
    torch.testing.assert_close(got, F.fold(x, I, K, D, P, S), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("ndim", [1, 3])
@pytest.mark.parametrize("K,S,P,D", [(3, 1, 1, 1), (2, 2, 0, 1), (3, 2, 2, 2), (1, 3, 0, 1)])
def test_fold_1d_3d_matches_dense(ndim, K, S, P, D):
    graph, x = _fold_case([7] * ndim, [K] * ndim, [S] * ndim, [P] * ndim, [D] * ndim)
    _check_scatter(graph, x)


@settings(deadline=None)
@given(ndim=st.integers(1, 3), data=st.data())
def test_fold_hypothesis(ndim, data):
    K = data.draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    D = data.draw(st.lists(st.integers(1, 2), min_size=ndim, max_size=ndim))
    S = data.draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    P = data.draw(st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim))
    I = [data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 8))
         for k, d, p in zip(K, D, P)]
    graph, x = _fold_case(I, K, S, P, D, batch=data.draw(st.integers(1, 2)),
                          channels=data.draw(st.integers(1, 3)))
    got = _check_scatter(graph, x)
    if ndim == 2:
        torch.testing.assert_close(got, F.fold(x, I, K, D, P, S), rtol=1e-10, atol=1e-10)


def test_fold_gradient_matches_torch():
    graph, x = _fold_case((9, 9), (3, 3), (2, 2), (1, 1), (1, 1))
    x.requires_grad_(True)
    v = torch.randn(2, 3, 9, 9)
    got = torch.autograd.grad(compile(graph)(x), x, v)[0]
    want = torch.autograd.grad(F.fold(x, (9, 9), 3, 1, 1, 2), x, v)[0]
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_scatter_of_a_general_pattern_inside_a_larger_network():
    """o, k on X with a summed channel; a raw pattern with uneven padding (taps past I)."""
    n, c, i, o, k = Index("n", 2), Index("c", 3), Index("i", 6), Index("o", 4), Index("k", 3)
    p = pattern("P", i, o, k, stride=2, pad_left=1, pad_right=3, dilation=1)
    graph = Graph.of([variable("X", [c, k, n, o]), p], [i, n])
    prog = compile(graph)
    assert [s.label for s in prog.steps] == ["scatter", "einsum"]
    x = torch.randn(3, 3, 2, 4)
    want = torch.zeros(6, 2)
    for oo in range(4):
        for kk in range(3):
            ii = oo * 2 + kk - 1
            if 0 <= ii < 6:
                want[ii] += x[:, kk, :, oo].sum(0)
    torch.testing.assert_close(prog(x), want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(compile(graph, lowerings=())(x), want, rtol=1e-10, atol=1e-10)


def test_without_the_lowering_fold_keeps_the_dense_pattern():
    graph, _ = _fold_case((8, 8), (3, 3), (1, 1), (1, 1), (1, 1))
    prog = compile(graph, lowerings=("view", "native"))
    assert "dense-pattern" in [op.lowering for op in prog.operands]


def test_symbolic_fold_plan_prints_the_scatter_and_its_cost():
    from tndiag.codegen import plan

    program = plan(ops.fold(None, ("I1",), 3, padding=1))
    assert [s.label for s in program.steps] == ["scatter"]
    flops = program.flops.subs({s: {"N": 2, "C": 3, "I1": 10}[s.name]
                                for s in program.flops.free_symbols})
    assert flops == 2 * 3 * 3 * 10  # one add per element of the (N, C·K, O) input
    assert "scatter" in str(program)


@pytest.mark.parametrize("stride,K", [(2, 3), (2, 5), (3, 4), (1, 3)])
def test_scatter_with_o_legs_apart_matches_dense(stride, K):
    """o legs separated by another leg, k legs between them (many taps per phase: the
    phase-major buffer; one tap per phase: direct strided adds)."""
    c = Index("c", 2)
    o1, o2 = Index("o1", 4), Index("o2", 3)
    k1, k2 = Index("k1", K), Index("k2", K)
    I1, I2 = (4 - 1) * stride + K - 2, (3 - 1) * stride + K
    i1, i2 = Index("i1", I1), Index("i2", I2)
    p1 = pattern("P1", i1, o1, k1, stride=stride, pad_left=1, pad_right=1)
    p2 = pattern("P2", i2, o2, k2, stride=stride)
    graph = Graph.of([variable("X", [o1, k2, c, k1, o2]), p1, p2], [c, i2, i1])
    prog = compile(graph)
    assert "scatter" in [s.label for s in prog.steps]
    x = torch.randn(4, K, 2, K, 3)
    torch.testing.assert_close(prog(x), compile(graph, lowerings=())(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("ndim", [1, 2])
def test_cost_model_picks_torch_fold_for_tiny_folds_only(ndim):
    """col2im on a tiny fold (the per-tap adds' calls dominate), the scatter on a large one;
    the exported code makes the same call."""
    tiny, x = _fold_case([8] * ndim, [3] * ndim, [1] * ndim, [1] * ndim, [1] * ndim, batch=1)
    large, _ = _fold_case([56] * ndim if ndim == 2 else [20000], [3] * ndim, [1] * ndim,
                          [1] * ndim, [1] * ndim, batch=32, channels=64)
    assert [s.label for s in compile(tiny).steps] == ["col2im"]
    assert [s.label for s in compile(large).steps] == ["scatter"]
    assert "run_col2im(" in export(tiny).split("# the plan")[1]
    torch.testing.assert_close(compile(tiny)(x), compile(tiny, lowerings=())(x), rtol=1e-10,
                               atol=1e-10)


def test_col2im_needs_torch_block_count_and_a_fold_output():
    """Uneven padding that changes torch's block count, or a fold inside a larger network,
    keep the scatter kernel."""
    n, c, i, o, k = Index("n", 1), Index("c", 2), Index("i", 6), Index("o", 4), Index("k", 3)
    p = pattern("P", i, o, k, stride=2, pad_left=1, pad_right=3, dilation=1)
    graph = Graph.of([variable("X", [n, c, k, o]), p], [n, c, i])
    assert [s.label for s in compile(graph).steps] == ["scatter"]
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(compile(graph)(x), compile(graph, lowerings=())(x))
