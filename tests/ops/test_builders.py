"""Builders: corpus diagrams verify; symbolic builders specialise to the concrete ones."""

import pytest
from corpus import CORPUS
from hypothesis import assume, given
from hypothesis import strategies as st

import tndiag
from tndiag import ops
from tndiag.errors import CompileError
from tndiag.ir import Graph, Kind, Sum, verify


@pytest.mark.parametrize("name, thunk", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_diagram_verifies_and_has_one_pattern_per_spatial_dim(name, thunk):
    d = verify(thunk())
    graph = d.terms[0] if isinstance(d, Sum) else d
    patterns = [t for t in graph.tensors if t.kind is Kind.PATTERN]
    assert patterns, name
    assert [t.name for t in patterns] == [f"P{n + 1}" for n in range(len(patterns))]


def _symbols(prefix, values):
    return {f"{prefix}{d + 1}": v for d, v in enumerate(values)}


def test_conv_legs_follow_the_naming_convention():
    g = ops.conv((2, 4, 9, 8), (6, 2, 3, 3), groups=2)
    assert [ix.name for ix in g.tensor("X").indices] == ["n", "g", "ci", "i1", "i2"]
    assert [ix.name for ix in g.tensor("W").indices] == ["g", "co", "ci", "k1", "k2"]
    assert [ix.name for ix in g.output_indices] == ["n", "g", "co", "o1", "o2"]
    assert g.tensor("X").shape == (2, 4, 9, 8)
    assert "g" not in ops.conv((2, 4, 9), (6, 4, 3)).indices()


def test_bias_is_a_sum_with_a_broadcast_term():
    d = ops.conv((2, 3, 8), (4, 3, 3), bias=True)
    assert isinstance(d, Sum) and len(d.terms) == 2
    term = d.terms[1]
    assert sorted(t.name for t in term.tensors) == ["B", "one"]
    assert term.tensor("B").shape == (4,)


def test_symbolic_diagram_compiles_only_with_sizes():
    g = ops.conv(ndim=1, stride=2)
    with pytest.raises(CompileError, match="symbolic sizes .*C_in.*"):
        tndiag.compile(g)
    prog = tndiag.compile(g, sizes={"N": 2, "C_in": 3, "C_out": 4, "I1": 9, "K1": 3})
    assert prog.output_shape == (2, 4, 4)


@st.composite
def configs(draw):
    ndim = draw(st.integers(1, 3))
    K = [draw(st.integers(1, 3)) for _ in range(ndim)]
    stride = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    padding = draw(st.one_of(
        st.integers(0, 2), st.just("valid"),
        st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(ndim)])))
    pads = ([(padding, padding)] * ndim if isinstance(padding, int) else
            [(0, 0)] * ndim if padding == "valid" else list(padding))
    I = [max(1, d * (k - 1) + 1 - pl - pr) + draw(st.integers(0, 3))
         for d, k, (pl, pr) in zip(dilation, K, pads)]
    groups = draw(st.integers(1, 3))
    return dict(ndim=ndim, K=K, I=I, stride=stride, dilation=dilation, padding=padding,
                groups=groups, N=draw(st.integers(1, 3)), cin=groups * draw(st.integers(1, 2)),
                cout=groups * draw(st.integers(1, 2)), bias=draw(st.booleans()))


@given(configs())
def test_symbolic_conv_substitutes_to_concrete(c):
    hyper = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                 groups=c["groups"], bias=c["bias"])
    symbolic = ops.conv(ndim=c["ndim"], **hyper)
    sizes = {"N": c["N"], "C_in": c["cin"], "C_out": c["cout"], **_symbols("I", c["I"]),
             **_symbols("K", c["K"])}
    concrete = ops.conv((c["N"], c["cin"], *c["I"]),
                        (c["cout"], c["cin"] // c["groups"], *c["K"]), **hyper)
    assert verify(symbolic.substitute(sizes)) == concrete


@given(configs(), st.data())
def test_symbolic_conv_transpose_substitutes_to_concrete(c, data):
    op = tuple(data.draw(st.integers(0, max(s, d) - 1))
               for s, d in zip(c["stride"], c["dilation"]))
    pads = c["padding"] if isinstance(c["padding"], int) else 0
    hyper = dict(stride=c["stride"], padding=pads, dilation=c["dilation"], groups=c["groups"],
                 output_padding=op, bias=c["bias"])
    # the transposed conv's input is the forward conv's output, which always fits
    I = [(i + 2 * pads - d * (k - 1) - 1) // s + 1 if (i + 2 * pads - d * (k - 1) - 1) >= 0
         else 1 for i, k, s, d in zip(c["I"], c["K"], c["stride"], c["dilation"])]
    try:
        concrete = ops.conv_transpose((c["N"], c["cin"], *I),
                                      (c["cin"], c["cout"] // c["groups"], *c["K"]), **hyper)
    except tndiag.InvalidArgumentError:
        assume(False)  # padding too large for this input: nothing to compare
    symbolic = ops.conv_transpose(ndim=c["ndim"], **hyper)
    # in the symbolic transposed builder "C_out" names the weight's out channels per group
    sizes = {"N": c["N"], "C_in": c["cin"], "C_out": c["cout"] // c["groups"],
             **_symbols("I", I), **_symbols("K", c["K"])}
    assert verify(symbolic.substitute(sizes)) == concrete


@given(configs())
def test_symbolic_unfold_fold_and_kernel_substitute_to_concrete(c):
    hyper = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
    sizes = {"N": c["N"], "C": c["cin"], **_symbols("I", c["I"]), **_symbols("K", c["K"])}
    K_sym = tuple(f"K{d + 1}" for d in range(c["ndim"]))
    concrete = ops.unfold((c["N"], c["cin"], *c["I"]), tuple(c["K"]), **hyper)
    assert verify(ops.unfold(kernel_size=K_sym, **hyper).substitute(sizes)) == concrete
    cols_shape = concrete.output_shape
    folded = ops.fold(cols_shape, tuple(c["I"]), tuple(c["K"]), **hyper)
    I_sym = tuple(f"I{d + 1}" for d in range(c["ndim"]))
    assert verify(ops.fold(None, I_sym, tuple(c["K"]), **hyper).substitute(sizes)) == folded
    kernel = ops.unfold_kernel((c["cout"], c["cin"] // c["groups"], *c["K"]), tuple(c["I"]),
                               groups=c["groups"], **hyper)
    # in the symbolic kernel-unfold builder "C_in" names the weight's in channels per group
    ksizes = {"C_out": c["cout"], "C_in": c["cin"] // c["groups"], **_symbols("I", c["I"]),
              **_symbols("K", c["K"])}
    symbolic = ops.unfold_kernel(ndim=c["ndim"], groups=c["groups"], **hyper)
    assert verify(symbolic.substitute(ksizes)) == kernel


@given(configs())
def test_builder_output_shapes_follow_torch_formulas(c):
    pads = ([(c["padding"],) * 2] * c["ndim"] if isinstance(c["padding"], int) else
            [(0, 0)] * c["ndim"] if c["padding"] == "valid" else c["padding"])
    O = [(i + pl + pr - d * (k - 1) - 1) // s + 1 for i, k, s, d, (pl, pr)
         in zip(c["I"], c["K"], c["stride"], c["dilation"], pads)]
    g = ops.conv((c["N"], c["cin"], *c["I"]), (c["cout"], c["cin"] // c["groups"], *c["K"]),
                 stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                 groups=c["groups"])
    assert g.output_shape == (c["N"], c["cout"], *O)
    prod_k, prod_o = 1, 1
    for k, o in zip(c["K"], O):
        prod_k, prod_o = prod_k * k, prod_o * o
    u = ops.unfold((c["N"], c["cin"], *c["I"]), tuple(c["K"]), c["dilation"], c["padding"],
                   c["stride"])
    assert u.output_shape == (c["N"], c["cin"] * prod_k, prod_o)


def test_same_padding_puts_the_extra_pixel_right():
    g = ops.conv((1, 1, 8), (1, 1, 4), padding="same", dilation=1)
    p = g.tensor("P1").params
    assert (p.pad_left, p.pad_right) == (1, 2)
    assert g.output_shape == (1, 1, 8)
    assert isinstance(g, Graph)
