"""Cost formulas of known programs (symbolic and concrete agree; Π priced by its lowering)."""

import pytest
import sympy

from tndiag import compile, ops
from tndiag.codegen import plan
from tndiag.codegen.cost import einsum_flops, pattern_memory, smax
from tndiag.codegen.lowering import STRUCTURED

S = {name: sympy.Symbol(name, integer=True, positive=True)
     for name in ("N", "C_in", "C_out", "I1", "K1")}


def test_symbolic_conv1d_flops_formula():
    p = plan(ops.conv(ndim=1))
    N, Ci, Co, I, K = (S[n] for n in ("N", "C_in", "C_out", "I1", "K1"))
    assert sympy.simplify(p.flops - 2 * N * Ci * Co * K * (I - K + 1)) == 0
    assert sympy.simplify(p.peak_memory - N * Co * (I - K + 1)) == 0
    assert "conv1d" in str(p) and "2*C_in*C_out*K1*N" in str(p)


@pytest.mark.parametrize("sizes", [dict(N=2, C_in=3, C_out=4, I1=9, K1=3),
                                   dict(N=5, C_in=1, C_out=2, I1=4, K1=4)])
def test_symbolic_formula_evaluates_to_the_concrete_cost(sizes):
    symbolic = plan(ops.conv(ndim=1))
    concrete = compile(ops.conv(ndim=1), sizes)
    subs = {S[k]: v for k, v in sizes.items()}
    assert int(symbolic.flops.subs(subs)) == concrete.flops
    assert int(sympy.sympify(symbolic.peak_memory).subs(subs)) == concrete.peak_memory


def test_dense_pattern_is_priced_dense_and_structured_ones_are_not():
    graph = ops.unfold((2, 3, 16), (5,), stride=2)
    dense = compile(graph, lowerings=())
    view = compile(graph, lowerings=tuple(n for n in STRUCTURED if n != "native"))
    im2col = compile(graph)  # torch's unfold on a tiny input: it copies its result
    I, O, K = 16, 6, 5
    assert dense.peak_memory >= I * O * K
    assert view.peak_memory < dense.peak_memory
    assert [s.flops for s in view.steps if s.kind == "view"] == [0]
    assert [(s.label, s.flops) for s in im2col.steps] == [("im2col", 2 * 3 * K * O)]
    assert pattern_memory("dense-pattern", I, O, K) == I * O * K
    assert pattern_memory("reduced-matrix", I, O, K) == I * K
    assert pattern_memory("view", I, O, K) == 0


def test_native_conv_flops_are_the_direct_convolution_count():
    prog = compile(ops.conv((8, 4, 10, 10), (6, 2, 3, 3), groups=2, stride=1))
    assert prog.flops == 2 * 8 * 6 * 2 * 8 * 8 * 9


def test_einsum_flops_and_smax():
    sizes = {"a": 2, "b": 3, "c": 4}
    assert einsum_flops("ab,bc->ac", sizes) == 2 * 24
    assert einsum_flops("ab->ba", sizes) == 6
    n = sympy.Symbol("n", positive=True)
    assert smax([1, 3]) == 3 and smax([n, 2 * n]) == 2 * n


def test_compile_printout_shows_lowerings_and_cost():
    text = str(compile(ops.conv((2, 3, 8, 8), (4, 3, 3, 3), padding=1)))
    assert "native" in text and "conv2d" in text and "cost: flops = " in text
    assert "peak memory" in text
