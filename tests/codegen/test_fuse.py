"""Sum terms evaluated together: a bias fused into the native kernel, broadcast terms (float64)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tndiag import compile, ops
from tndiag.codegen.lowering import STRUCTURED
from tndiag.codegen.program import Program, SumProgram
from tndiag.ir import Graph, Index, Sum, constant, variable

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
NO_BIAS = tuple(s for s in STRUCTURED if s != "bias")


def _labels(program):
    terms = program.terms if isinstance(program, SumProgram) else (program,)
    return [s.label for t in terms for s in t.steps]


def _conv_case(ndim, groups, stride, padding, dilation, batch=2, size=7):
    x = torch.randn(batch, 2 * groups, *[size] * ndim)
    w = torch.randn(3 * groups, 2, *[3] * ndim)
    b = torch.randn(3 * groups)
    diagram = ops.conv(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, bias=True)
    want = CONV[ndim](x, w, b, stride, padding, dilation, groups)
    return diagram, (x, w, b), want


def _transpose_case(ndim, groups, stride, padding, dilation, output_padding, batch=2, size=5):
    x = torch.randn(batch, 2 * groups, *[size] * ndim)
    w = torch.randn(2 * groups, 3, *[3] * ndim)
    b = torch.randn(3 * groups)
    diagram = ops.conv_transpose(x.shape, w.shape, stride=stride, padding=padding,
                                 output_padding=output_padding, groups=groups,
                                 dilation=dilation, bias=True)
    want = CONV_T[ndim](x, w, b, stride, padding, output_padding, groups, dilation)
    return diagram, (x, w, b), want


def _check(diagram, args, want, label):
    fused = compile(diagram)
    if _labels(compile(diagram.terms[0])) == [label]:  # a native kernel takes the bias
        assert isinstance(fused, Program) and _labels(fused) == [label + "+bias"]
        assert "+bias" in str(fused)
    else:  # e.g. stride = kernel: a reshape, not a kernel; the bias term is a broadcast
        assert _labels(fused)[-1] == "broadcast"
    got = fused(*args)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    dense = compile(diagram, lowerings=())(*args)
    torch.testing.assert_close(got, dense, rtol=1e-10, atol=1e-10)
    viewed = compile(diagram, lowerings=NO_BIAS)
    assert _labels(viewed)[-1] == "broadcast"
    torch.testing.assert_close(viewed(*args), want, rtol=1e-10, atol=1e-10)


GRID = [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 1)]  # (stride, padding, dilation)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("stride,padding,dilation", GRID)
def test_conv_bias_fused_matches_torch(ndim, groups, stride, padding, dilation):
    diagram, args, want = _conv_case(ndim, groups, stride, padding, dilation)
    _check(diagram, args, want, f"conv{ndim}d")
    assert _labels(compile(diagram)) == [f"conv{ndim}d+bias"]


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("stride,padding,dilation,output_padding",
                         [(1, 0, 1, 0), (2, 1, 1, 1), (3, 0, 2, 1), (2, 2, 1, 0)])
def test_conv_transpose_bias_fused_matches_torch(ndim, groups, stride, padding, dilation,
                                                 output_padding):
    diagram, args, want = _transpose_case(ndim, groups, stride, padding, dilation,
                                          output_padding)
    _check(diagram, args, want, f"conv_transpose{ndim}d")
    assert _labels(compile(diagram)) == [f"conv_transpose{ndim}d+bias"]


@settings(deadline=None)
@given(ndim=st.integers(1, 3), groups=st.integers(1, 3), batch=st.integers(1, 3),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       output_padding=st.integers(0, 2), transposed=st.booleans())
def test_bias_fused_hypothesis(ndim, groups, batch, stride, padding, dilation, output_padding,
                               transposed):
    if transposed:
        output_padding = min(output_padding, max(stride, dilation) - 1)
        case = _transpose_case(ndim, groups, stride, padding, dilation, output_padding, batch)
        label = f"conv_transpose{ndim}d"
    else:
        case = _conv_case(ndim, groups, stride, padding, dilation, batch)
        label = f"conv{ndim}d"
    _check(*case, label)


def test_bias_gradients_match_torch():
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    w = torch.randn(6, 2, 3, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    prog = compile(ops.conv(x.shape, w.shape, padding=1, groups=2, bias=True))
    v = torch.randn(2, 6, 6, 6)
    got = torch.autograd.grad(prog(x, w, b), (x, w, b), v)
    want = torch.autograd.grad(F.conv2d(x, w, b, 1, 1, 1, 2), (x, w, b), v)
    for g, h in zip(got, want):
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-10)


def _renamed_bias(scale=1.0, channel_leg="co"):
    """conv(X, W) + 2·Z[leg]·ones, with names unlike the builders' (structure only)."""
    conv = ops.conv((2, 3, 8), (4, 3, 3))
    out = conv.output
    legs = {ix.name: ix for axis in out for ix in axis}
    others = [ix for name, ix in legs.items() if name != channel_leg]
    term = Graph.of([variable("Z", [legs[channel_leg]]), constant("ones", scale, others)], out)
    return Sum((term, conv))


def test_fusion_is_structural_and_keeps_the_scale():
    diagram = _renamed_bias(scale=2.0)
    prog = compile(diagram)
    assert _labels(prog) == ["conv1d+bias"] and prog.inputs == ("Z", "X", "W")
    z, x, w = torch.randn(4), torch.randn(2, 3, 8), torch.randn(4, 3, 3)
    torch.testing.assert_close(prog(z, x, w), F.conv1d(x, w, 2 * z), rtol=1e-10, atol=1e-10)


def test_bias_on_a_pixel_leg_is_a_broadcast_not_a_fused_bias():
    diagram = _renamed_bias(channel_leg="o1")
    prog = compile(diagram)
    assert isinstance(prog, SumProgram) and sorted(_labels(prog)) == ["broadcast", "conv1d"]
    z, x, w = torch.randn(6), torch.randn(2, 3, 8), torch.randn(4, 3, 3)
    torch.testing.assert_close(prog(z, x, w), F.conv1d(x, w) + z, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(prog(z, x, w), compile(diagram, lowerings=())(z, x, w))


def test_broadcast_sum_leaves_an_aliased_first_term_untouched():
    n, c = Index("n", 3), Index("c", 4)
    diagram = Sum((Graph.of([variable("X", [n, c])], [n, c]),
                   Graph.of([variable("V", [c]), constant("one", 1, [n])], [n, c])))
    prog = compile(diagram)
    assert _labels(prog) == ["broadcast"]
    x, v = torch.randn(3, 4), torch.randn(4)
    before = x.clone()
    torch.testing.assert_close(prog(x, v), x + v)
    torch.testing.assert_close(x, before)


def test_without_the_lowerings_the_bias_stays_an_einsum_term():
    prog = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True), lowerings=("native",))
    assert _labels(prog) == ["conv1d", "einsum"]


@pytest.mark.parametrize("lowerings", [None, NO_BIAS])
def test_transpose_bias_gradients_match_torch(lowerings):
    """Fused kernel and broadcast-added term (in place on the kernel's result) under autograd."""
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    diagram = ops.conv_transpose(x.shape, w.shape, stride=2, padding=1, output_padding=1,
                                 groups=2, bias=True)
    prog = compile(diagram, lowerings=lowerings)
    want_y = F.conv_transpose2d(x, w, b, 2, 1, 1, 2)
    v = torch.randn(want_y.shape)
    got = torch.autograd.grad(prog(x, w, b), (x, w, b), v)
    want = torch.autograd.grad(want_y, (x, w, b), v)
    for g, h in zip(got, want):
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-10)
