"""Derived builders (VJPs, JVPs, Jacobians, curvature diagrams) vs torch autograd / brute force."""

import pathlib

import pytest
import torch
from diagram_checks import (
    assert_close,
    build_conv,
    conv_cases,
    evaluate,
    inputs_for,
    pipeline,
    torch_conv,
)
from hypothesis import given

import tndiag
from tndiag import ops
from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.ir import Graph, Kind, verify
from tndiag.passes.canonicalize import canonicalize
from tndiag.passes.rules.sum_out import sum_out

GRID = {
    "1d-strided": dict(transposed=False, x_shape=(2, 2, 7), w_shape=(3, 2, 3), stride=2,
                       padding=1, dilation=1, groups=1),
    "2d-grouped-dilated": dict(transposed=False, x_shape=(1, 4, 6, 5), w_shape=(4, 2, 2, 3),
                               stride=(1, 2), padding=0, dilation=(2, 1), groups=2),
    "2d-depthwise-same-even": dict(transposed=False, x_shape=(3, 3, 5, 6), w_shape=(3, 1, 4, 2),
                                   stride=1, padding="same", dilation=(1, 2), groups=3),
    "3d-asymmetric": dict(transposed=False, x_shape=(1, 2, 4, 3, 5), w_shape=(2, 2, 2, 1, 3),
                          stride=(1, 1, 2), padding=((1, 0), (0, 0), (1, 1)), dilation=1,
                          groups=1),
    "t1d-output-padding": dict(transposed=True, x_shape=(2, 2, 4), w_shape=(2, 3, 3), stride=2,
                               padding=1, dilation=1, groups=1, output_padding=1),
    "t2d-grouped": dict(transposed=True, x_shape=(1, 4, 3, 3), w_shape=(4, 1, 2, 3),
                        stride=(2, 3), padding=(0, 1), dilation=1, groups=2,
                        output_padding=(1, 2)),
    "t3d-dilated": dict(transposed=True, x_shape=(1, 2, 2, 3, 2), w_shape=(2, 1, 2, 2, 1),
                        stride=(1, 2, 1), padding=0, dilation=(2, 1, 1), groups=2,
                        output_padding=(1, 1, 0)),
}


def _kwargs(case):
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"])
    if case["transposed"]:
        kw["output_padding"] = case["output_padding"]
    return kw


def check_derivatives(case):
    """Every derived builder of ``case`` against torch autograd."""
    f = torch_conv(case)
    forward = build_conv(case)
    t = inputs_for(forward, seed=1)
    x, w = t["X"], t["W"]
    v = torch.randn(forward.output_shape, dtype=torch.float64)
    gx, gw = torch.autograd.grad(f(x.requires_grad_(), w.requires_grad_()), (x, w), v)
    x, w = x.detach(), w.detach()
    shapes, kw = (case["x_shape"], case["w_shape"]), dict(transposed=case["transposed"],
                                                           **_kwargs(case))
    vals = {"X": x, "W": w, "V": v}
    assert_close(evaluate(ops.conv_input_vjp(*shapes, **kw), vals), gx, "input VJP")
    assert_close(evaluate(ops.conv_weight_vjp(*shapes, **kw), vals), gw, "weight VJP")
    for name, build in (("X", ops.conv_input_jvp), ("W", ops.conv_weight_jvp)):
        tangent = torch.randn_like(vals[name])
        ref = torch.func.jvp(lambda a, name=name: f(**{**dict(x=x, w=w), name.lower(): a}),
                             (vals[name],), (tangent,))[1]
        got = evaluate(build(*shapes, **kw), {**vals, "V": tangent})
        assert_close(got, ref, f"{name} JVP")
    jx, jw = torch.func.jacrev(f, argnums=(0, 1))(x, w)
    assert_close(evaluate(ops.conv_jacobian(*shapes, "X", **kw), vals), jx, "dY/dX")
    assert_close(evaluate(ops.conv_jacobian(*shapes, "W", **kw), vals), jw, "dY/dW")


@pytest.mark.parametrize("name", list(GRID))
def test_derivatives_grid(name):
    check_derivatives(GRID[name])


@given(conv_cases(transposed=False))
def test_derivatives_hypothesis(case):
    check_derivatives(case)


@given(conv_cases(transposed=True))
def test_derivatives_transposed_hypothesis(case):
    check_derivatives(case)


def test_derived_builders_are_differentiated_diagrams():
    g = ops.conv_weight_vjp((2, 3, 8), (4, 3, 3))
    assert isinstance(g, Graph) and sorted(t.name for t in g.variables()) == ["V", "X"]
    assert g.tensor("V").role.value == "vector"
    sym = ops.conv_input_vjp(ndim=2, stride=2)
    verify(sym)
    assert not sym.is_concrete()


# -- curvature builders ----------------------------------------------------------------------

def per_sample_jacobians(x, w, kw):
    """``J[n] = ∂ conv(x[n]) / ∂W`` of shape ``[N, C_out, *O, *W.shape]`` by autograd."""
    f = torch_conv(dict(transposed=False, w_shape=tuple(w.shape), **kw))
    return torch.stack([torch.func.jacrev(lambda w, n=n: f(x[n:n + 1], w)[0])(w)
                        for n in range(x.shape[0])])


def ggn_brute_force(x, w, s, kw):
    """Per-(z, n) weight gradients ``g[z, n, w] = Σ_out S[z, n, out] J[n, out, w]``."""
    J = per_sample_jacobians(x, w, kw).flatten(1, x.dim() - 1).flatten(2)
    return torch.einsum("znc,ncw->znw", s.flatten(2), J)


CURV = [
    (dict(stride=1, padding=0, dilation=1, groups=1), (2, 2, 5), (3, 2, 2), 2),
    (dict(stride=2, padding=1, dilation=1, groups=2), (2, 4, 6), (4, 2, 3), 3),
    (dict(stride=1, padding="same", dilation=(1, 2), groups=2), (3, 2, 4, 5), (4, 1, 2, 2), 1),
]


@pytest.mark.parametrize("kw, xs, ws, Z", CURV)
def test_weight_ggn_block_and_per_sample_grads(kw, xs, ws, Z):
    x, w = torch.randn(xs), torch.randn(ws)
    O = torch_conv(dict(transposed=False, w_shape=ws, **kw))(x, w).shape[2:]
    s = torch.randn(Z, xs[0], ws[0], *O)
    grads = ggn_brute_force(x, w, s, kw)
    args = (xs, s.shape, ws[2:], kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    per = pipeline(ops.per_sample_weight_vjp(*args), "identity")
    assert_close(evaluate(per, {"X": x, "S": s}).flatten(2), grads, "per-sample grads")
    full = ops.weight_ggn(*args)
    assert full.output_shape == (*ws, *ws)
    assert_close(evaluate(full, {"X": x, "S": s}).reshape(w.numel(), w.numel()),
                 torch.einsum("znv,znw->vw", grads, grads), "full block")
    assert_close(evaluate(ops.weight_ggn_diag(*args), {"X": x, "S": s}).flatten(),
                 (grads ** 2).sum((0, 1)), "diag")
    gram = torch.einsum("znw,ymw->znym", grads, grads).reshape(Z * xs[0], Z * xs[0])
    assert_close(evaluate(ops.weight_ggn_gram(*args), {"X": x, "S": s}), gram, "gram")


@pytest.mark.parametrize("reduce", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 4, 3)])
def test_grad_output_kfac(shape, reduce):
    g = ops.grad_output_kfac(shape, reduce=reduce, scale=0.5)
    v = torch.randn(shape)
    flat = v.flatten(2)
    ref = (torch.einsum("nc,nd->cd", flat.sum(-1), flat.sum(-1)) if reduce
           else torch.einsum("ncl,ndl->cd", flat, flat))
    assert not any(t.kind is Kind.PATTERN for t in g.tensors)
    assert_close(evaluate(g, {"V": v}), 0.5 * ref)


def test_kfac_reduce_applies_sum_out():
    red = ops.kfac_reduce((2, 4, 6, 6), (3, 3), stride=2, groups=2)
    assert sum(t.kind is Kind.REDUCED for t in red.tensors) == 4
    assert not any(t.kind is Kind.PATTERN for t in red.tensors)
    kfc = ops.kfc((2, 4, 6, 6), (3, 3), stride=2, groups=2)
    assert sum(t.kind is Kind.PATTERN for t in kfc.tensors) == 4
    assert [t.name for t in kfc.variables()] == ["X", "X"]


def test_curvature_builder_errors():
    with pytest.raises(InvalidArgumentError, match="input_shape must be a concrete shape"):
        ops.kfc(None, 3)
    with pytest.raises(InvalidArgumentError, match="groups=2 must divide"):
        ops.kfc((2, 3, 6), 3, groups=2)
    with pytest.raises(ShapeError, match=r"grad_output_factor must have shape \[Z, 2, 4, 4\]"):
        ops.weight_ggn_diag((2, 3, 6), (1, 2, 4, 5), 3, groups=1)
    with pytest.raises(InvalidArgumentError, match="transposed convolution must be an int"):
        ops.kfc((2, 3, 6), 3, padding="same", transposed=True)


# -- the text-language gallery (examples/*.tnd, written by hand from docs/method.md §2) ---------

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
X2, W2, HYPER = (4, 6, 8, 7), (4, 3, 3, 2), dict(stride=2, padding=1, groups=2)


def _renamed(diagram, old, new):
    return diagram.replace(tensors=[t.replace(name=new) if t.name == old else t
                                    for t in diagram.tensors])


GALLERY = {
    "weight_vjp": lambda: ops.conv_weight_vjp(X2, W2, **HYPER),
    "input_vjp": lambda: ops.conv_input_vjp(X2, W2, **HYPER),
    "input_jvp": lambda: _renamed(ops.conv_input_jvp(X2, W2, **HYPER), "V", "VX"),
    "weight_jvp": lambda: _renamed(ops.conv_weight_jvp(X2, W2, **HYPER), "V", "VW"),
    "kfc": lambda: ops.kfc(X2, (3, 2), **HYPER),
    "kfac_reduce": lambda: ops.kfac_reduce(X2, (3, 2), **HYPER),
    "ggn_diagonal": lambda: ops.weight_ggn_diag(X2, (2, 4, 4, 4, 4), (3, 2), **HYPER),
    "ggn_gram": lambda: ops.weight_ggn_gram(X2, (2, 4, 4, 4, 4), (3, 2), **HYPER),
    "ggn_block": lambda: ops.weight_ggn(X2, (2, 4, 4, 4, 4), (3, 2), **HYPER),
    "grad_output_kfac": lambda: ops.grad_output_kfac((4, 4, 4, 4)),
    "grad_output_kfac_reduce": lambda: ops.grad_output_kfac((4, 4, 4, 4), reduce=True),
}


@pytest.mark.parametrize("name", list(GALLERY))
def test_derived_builders_equal_the_hand_written_gallery(name):
    by_hand = tndiag.parse((EXAMPLES / f"{name}.tnd").read_text())
    if name == "kfac_reduce":  # the gallery writes the patterns; the builder sums them out
        by_hand = sum_out(by_hand)
    assert canonicalize(GALLERY[name]()) == canonicalize(by_hand)


@pytest.mark.parametrize("name, build", [
    ("kfac_transposed", ops.kfc), ("kfac_reduce_transposed", ops.kfac_reduce)])
def test_transposed_factors_equal_the_gallery_in_value(name, build):
    by_hand = tndiag.parse((EXAMPLES / f"{name}.tnd").read_text())
    mine = build((4, 3, 4, 4), 3, stride=2, padding=1, output_padding=1, transposed=True)
    t = inputs_for(mine)
    assert_close(evaluate(mine, t)[0], evaluate(by_hand, t), name)
