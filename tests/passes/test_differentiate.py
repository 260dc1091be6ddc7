"""differentiate / vjp / jvp: canonical forms vs docs/method.md §2, autograd, higher order."""

import pytest
import torch
from corpus import IDS, build
from diagram_checks import assert_close, evaluate, inputs_for, pipeline
from hypothesis import given
from hypothesis import strategies as st

import tndiag
from tndiag import ops
from tndiag.errors import InvalidArgumentError, PassError, TndiagError, UnknownNameError
from tndiag.ir import Graph, Index, Kind, Role, Sum, pattern, variable
from tndiag.passes.canonicalize import canonicalize
from tndiag.passes.differentiate import differentiate, jvp, vjp

# (input sizes, kernel, stride, (pad_left, pad_right), dilation) per spatial dimension
SPATIAL = {
    "1d": [(7, 3, 2, (1, 1), 1)],
    "2d-dilated": [(6, 2, 1, (0, 1), 2), (5, 3, 1, (1, 1), 1)],
    "2d-strided": [(8, 3, 2, (1, 0), 1), (5, 1, 3, (0, 0), 1)],
    "3d": [(4, 2, 1, (0, 0), 1), (3, 1, 1, (0, 0), 1), (5, 3, 2, (1, 1), 1)],
}


def _O(I, K, S, pads, D):
    return (I + pads[0] + pads[1] - D * (K - 1) - 1) // S + 1


def _hand_patterns(dims):
    """docs/method.md §2 by hand: one Π per dimension, legs named differently from the builder."""
    pats, ins, outs, ks = [], [], [], []
    for d, (I, K, S, pads, D) in enumerate(dims):
        i, o, k = Index(f"in{d}", I), Index(f"out{d}", _O(I, K, S, pads, D)), Index(f"tap{d}", K)
        pats.append(pattern(f"Pi{d}", i, o, k, S, pads[0], pads[1], D))
        ins.append(i)
        outs.append(o)
        ks.append(k)
    return pats, ins, outs, ks


def _builder_conv(dims, N, G, Ci, Co):
    return ops.conv((N, G * Ci, *[d[0] for d in dims]), (G * Co, Ci, *[d[1] for d in dims]),
                    stride=[d[2] for d in dims], padding=[d[3] for d in dims],
                    dilation=[d[4] for d in dims], groups=G)


def _chan(g, c):
    return (g, c) if g is not None else (c,)


@pytest.mark.parametrize("dims", list(SPATIAL.values()), ids=list(SPATIAL))
@pytest.mark.parametrize("G", [1, 3])
def test_vjps_equal_paper_networks(dims, G):
    N, Ci, Co = 2, 2, 3
    forward = _builder_conv(dims, N, G, Ci, Co)
    pats, ins, outs, ks = _hand_patterns(dims)
    n, ci, co = Index("batch", N), Index("cin", Ci), Index("cout", Co)
    g = Index("grp", G) if G > 1 else None
    X = variable("X", [n, _chan(g, ci), *ins], Role.INPUT)
    W = variable("W", [_chan(g, co), ci, *ks], Role.PARAMETER)
    V = variable("V", [n, _chan(g, co), *outs], Role.VECTOR)
    # weight VJP: n g ci i.., i o k, n g co o.. -> g co ci k..
    weight_vjp = Graph.of([V, *reversed(pats), X], [_chan(g, co), ci, *ks])
    # input VJP: n g co o.., i o k, g co ci k.. -> n g ci i..
    input_vjp = Graph.of([W, V, *pats], [n, _chan(g, ci), *ins])
    got_w = pipeline(forward, "vjp{wrt=W,vector=V},canonicalize")
    got_x = pipeline(forward, "vjp{wrt=X,vector=V},canonicalize")
    assert got_w == canonicalize(weight_vjp)
    assert got_x == canonicalize(input_vjp)
    assert hash(got_w) == hash(canonicalize(weight_vjp))
    assert got_w != got_x


def test_jvp_is_forward_with_tangent():
    forward = ops.conv((2, 4, 6), (6, 2, 3), groups=2)
    got = pipeline(forward, "jvp{wrt=X,tangent=T},canonicalize")
    by_hand = forward.replace(tensors=[t.replace(name="T", role=Role.VECTOR) if t.name == "X"
                                       else t for t in forward.tensors])
    assert got == canonicalize(by_hand)


def _power(graph: Graph, p: int) -> Graph:
    """``Σ_out Y^p`` from ``p`` copies of ``graph`` sharing its output legs (a scalar)."""
    keep = {ix.name for ix in graph.output_indices}
    tensors = list(graph.tensors)
    for c in range(1, p):
        copy = graph.rename_indices({nm: f"{nm}_{c}" for nm in graph.indices() if nm not in keep})
        tensors += [t if t.kind is Kind.VARIABLE else t.replace(name=f"{t.name}_{c}")
                    for t in copy.tensors]
    return Graph(tuple(tensors), ())


CONV = dict(stride=2, padding=1, groups=2)


def _torch_f(x, w):
    return torch.nn.functional.conv1d(x, w, None, 2, 1, 1, 2)


@pytest.fixture
def small():
    g = ops.conv((2, 4, 5), (4, 2, 3), **CONV)
    t = inputs_for(g)
    return g, t["X"], t["W"]


def test_hessian_wrt_weight(small):
    g, x, w = small
    square = _power(g, 2)
    H = pipeline(square, "differentiate{wrt=W|W}")
    assert isinstance(H, Sum) and len(H.terms) == 2
    ref = torch.autograd.functional.hessian(lambda w: (_torch_f(x, w) ** 2).sum(), w)
    assert_close(evaluate(H, {"X": x, "W": w}), ref, "d2/dW2")


def test_hessian_wrt_input_by_repeated_application(small):
    g, x, w = small
    square = _power(g, 2)
    H = pipeline(square, "differentiate{wrt=X},differentiate{wrt=X}")
    ref = torch.autograd.functional.hessian(lambda x: (_torch_f(x, w) ** 2).sum(), x)
    assert_close(evaluate(H, {"X": x, "W": w}), ref, "d2/dX2")


def test_mixed_second_derivative(small):
    g, x, w = small
    H = pipeline(_power(g, 2), "differentiate{wrt=X|W}")
    ref = nested_jacobian(lambda a: (_torch_f(a["X"], a["W"]) ** 2).sum(), {"X": x, "W": w},
                          ["X", "W"])
    assert_close(evaluate(H, {"X": x, "W": w}), ref, "d2/dXdW")


def nested_jacobian(fn, args: dict, names):
    """``d/d names[-1] ... d/d names[0] fn(args)``, shaped ``out + names[0] + names[1] ...``

    (nested ``torch.func.jacrev`` over the arguments ``X`` and ``W``)."""
    order = ["X", "W"]

    def f(X, W):
        return fn({"X": X, "W": W})

    for name in names:
        f = torch.func.jacrev(f, argnums=order.index(name))
    return f(args["X"], args["W"])


@pytest.mark.parametrize("wrt", ["W|W|W", "X|W|X"])
def test_third_derivative(wrt):
    g = ops.conv((2, 4, 4), (4, 2, 2), **CONV)
    args = inputs_for(g)
    T = pipeline(_power(g, 3), f"differentiate{{wrt={wrt}}}")
    assert isinstance(T, Sum) and len(T.terms) == {"W|W|W": 6, "X|W|X": 18}[wrt]
    ref = nested_jacobian(lambda a: (_torch_f(a["X"], a["W"]) ** 3).sum(), args,
                          wrt.split("|"))
    assert_close(evaluate(T, args), ref, f"d3/{wrt}")


def test_linear_diagram_second_derivative_is_zero(small):
    g, x, w = small
    z = pipeline(g, "differentiate{wrt=W|W}")
    assert [t.kind for t in z.tensors] == [Kind.CONSTANT]
    assert z.output_shape == (*g.output_shape, *w.shape, *w.shape)
    assert evaluate(z, {"X": x, "W": w}).abs().max() == 0


def test_bias_terms_and_product_rule_sum():
    g = ops.conv((2, 2, 5), (3, 2, 2), bias=True)
    t = inputs_for(g)
    f = lambda x, w, b: torch.nn.functional.conv1d(x, w, b)  # noqa: E731
    refs = torch.autograd.functional.jacobian(f, (t["X"], t["W"], t["B"]))
    for name, ref in zip("XWB", refs):
        jac = pipeline(g, f"differentiate{{wrt={name}}}")
        assert isinstance(jac, Graph)  # the other term has derivative zero
        assert_close(evaluate(jac, t), ref, name)


def test_kfc_jacobian_has_one_term_per_occurrence():
    g = ops.kfc((2, 2, 5), 2, groups=2)
    jac = pipeline(g, "differentiate{wrt=X}")
    assert isinstance(jac, Sum) and len(jac.terms) == 2
    x = inputs_for(g)["X"]
    ref = torch.autograd.functional.jacobian(lambda x: evaluate(g, {"X": x}), x)
    assert_close(evaluate(jac, {"X": x}), ref, "KFC Jacobian")
    v = torch.randn(g.output_shape)
    got = evaluate(pipeline(g, "vjp{wrt=X,vector=V}"), {"X": x, "V": v})
    assert_close(got, torch.einsum("abc,abcnde->nde", v, ref), "KFC VJP")
    tan = torch.randn(x.shape)
    got = evaluate(pipeline(g, "jvp{wrt=X,tangent=T}"), {"X": x, "T": tan})
    assert_close(got, torch.einsum("abcnde,nde->abc", ref, tan), "KFC JVP")


@given(st.sampled_from(["X", "W", "X|W"]), st.integers(1, 2), st.integers(1, 2),
       st.integers(1, 3), st.integers(0, 1), st.integers(1, 2))
def test_jacobian_matches_autograd(wrt, N, G, S, P, D):
    g = ops.conv((N, 2 * G, 6), (G, 2, 2), stride=S, padding=P, dilation=D, groups=G)
    t = inputs_for(g)

    def f(x, w):
        return torch.nn.functional.conv1d(x, w, None, S, P, D, G)

    ref = nested_jacobian(lambda a: f(a["X"], a["W"]), t, wrt.split("|"))
    assert_close(evaluate(pipeline(g, f"differentiate{{wrt={wrt}}}"), t), ref, wrt)


def test_symbolic_jacobian_keeps_symbols():
    jac = tndiag.differentiate(ops.conv(ndim=2, groups=2), "W")
    assert jac.output_shape[-4:] == ops.conv(ndim=2, groups=2).tensor("W").shape
    assert not jac.is_concrete()


def test_trace_names_cut_tensor():
    _, trace = differentiate.traced(ops.conv((1, 1, 4), (1, 1, 2)), "X")
    assert trace.fired[0].rule == "cut" and trace.fired[0].tensors[0] == "X"
    assert "cut" in str(trace)


# -- errors --------------------------------------------------------------------------------

def test_unknown_wrt_names_choices():
    with pytest.raises(UnknownNameError, match=r"wrt='Z'.*\['W', 'X'\]"):
        differentiate(ops.conv(ndim=1), "Z")
    with pytest.raises(UnknownNameError, match="wrt='Q'"):
        pipeline(ops.conv(ndim=1), "vjp{wrt=Q}")


def test_wrt_must_be_a_variable():
    with pytest.raises(InvalidArgumentError, match="pattern"):
        differentiate(ops.conv(ndim=1), "P1")
    with pytest.raises(InvalidArgumentError, match="wrt must name"):
        differentiate(ops.conv(ndim=1), ())


def test_vector_with_wrong_legs():
    g = ops.conv((2, 3, 5), (4, 3, 3))
    wrong = variable("V", [Index("n", 2), Index("co", 4)], Role.VECTOR)
    with pytest.raises(InvalidArgumentError, match=r"vector 'V' has legs .* expected exactly"):
        vjp(g, "W", wrong)
    right = variable("V", g.output, Role.VECTOR)
    assert vjp(g, "W", right).output == g.tensor("W").axes
    with pytest.raises(InvalidArgumentError, match="already a tensor"):
        vjp(g, "W", "X")
    bad_tangent = variable("T", [Index("co", 4)], Role.VECTOR)
    with pytest.raises(InvalidArgumentError, match="tangent 'T' has legs"):
        jvp(g, "W", bad_tangent)
    with pytest.raises(InvalidArgumentError, match="one tangent per name"):
        jvp(g, "X|W", "T")


def test_errors_are_tndiag_errors_and_value_errors():
    with pytest.raises(TndiagError):
        differentiate(ops.conv(ndim=1), "P1")
    with pytest.raises(ValueError):
        differentiate(ops.conv(ndim=1), "P1")
    with pytest.raises(PassError, match="no option 'vector'"):
        pipeline(ops.conv(ndim=1), "differentiate{wrt=W,vector=V}")


@pytest.mark.parametrize("name", IDS)
def test_corpus_vjps_match_autograd_of_the_forward_program(name):
    d = build(name)
    terms = d.terms if isinstance(d, Sum) else (d,)
    first = {}
    for term in terms:
        for t in term.variables():
            first.setdefault(t.name, t)
    for wrt in sorted(first):
        jac = pipeline(d, f"differentiate{{wrt={wrt}}}")
        assert jac.output_shape == (*d.output_shape, *first[wrt].shape)
        v = pipeline(d, f"vjp{{wrt={wrt},vector=Vy}}")
        if not d.is_concrete():
            continue
        t = inputs_for(d)
        t["Vy"] = torch.randn(d.output_shape, dtype=torch.float64)
        x = t[wrt].clone().requires_grad_()
        y = evaluate(d, {**t, wrt: x})
        (ref,) = torch.autograd.grad(y, x, t["Vy"])
        assert_close(evaluate(v, t), ref, f"{name}: VJP w.r.t. {wrt}")


@pytest.mark.parametrize("name", ["conv2d-strided-grouped", "conv2d-convnext-stem",
                                  "conv2d-downsample-1x1s2", "conv2d-inception-1x7",
                                  "conv-transpose2d-grouped-bias"])
def test_derivatives_then_simplify_keep_their_value(name):
    d = build(name)
    t = inputs_for(d)
    t["Vy"] = torch.randn(d.output_shape, dtype=torch.float64)
    for wrt in ("X", "W"):
        for text in (f"differentiate{{wrt={wrt}}}", f"vjp{{wrt={wrt},vector=Vy}}"):
            derived = pipeline(d, text)
            simplified = pipeline(derived, "simplify,canonicalize")
            assert_close(evaluate(simplified, t), evaluate(derived, t), f"{name}: {text}")


def test_vjp_then_jacobian_and_second_order_jvp(small):
    g, x, w = small
    v = torch.randn(g.output_shape, dtype=torch.float64)
    mixed = pipeline(g, "vjp{wrt=X|W,vector=V}")
    assert mixed.output_shape == (*x.shape, *w.shape)

    def input_vjp(w):
        return torch.func.vjp(lambda x: _torch_f(x, w), x)[1](v)[0]

    ref = torch.func.jacrev(input_vjp)(w)
    assert_close(evaluate(mixed, {"X": x, "W": w, "V": v}), ref, "d/dW input VJP")
    t1, t2 = torch.randn_like(w), torch.randn_like(w)
    second = pipeline(_power(g, 2), "jvp{wrt=W|W,tangent=T1|T2}")

    def directional(w):
        return torch.func.jvp(lambda w: (_torch_f(x, w) ** 2).sum(), (w,), (t1,))[1]

    ref = torch.func.jvp(directional, (w,), (t2,))[1]
    got = evaluate(second, {"X": x, "W": w, "T1": t1, "T2": t2})
    assert_close(got, ref, "second-order JVP")
