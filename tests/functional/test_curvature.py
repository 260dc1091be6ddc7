"""tndiag.functional curvature: VJPs vs torch.nn.grad, KFC/KFAC-reduce vs an explicit unfold
reference and einconv, GGN diagonal/Gram vs brute-force per-sample Jacobians."""

import math

import pytest
import torch
from diagram_checks import assert_close, conv_cases, torch_conv
from einconv.expressions import convNd_kfac_reduce, convNd_kfc
from hypothesis import given

import tndiag.functional as TF
from tndiag.errors import InvalidArgumentError, ShapeError

GRAD_INPUT = {1: torch.nn.grad.conv1d_input, 2: torch.nn.grad.conv2d_input,
              3: torch.nn.grad.conv3d_input}
GRAD_WEIGHT = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight,
               3: torch.nn.grad.conv3d_weight}

GRID = {
    "1d-strided": dict(transposed=False, x_shape=(2, 2, 7), w_shape=(3, 2, 3), stride=2,
                       padding=1, dilation=1, groups=1),
    "2d-grouped-dilated": dict(transposed=False, x_shape=(1, 4, 6, 5), w_shape=(4, 2, 2, 3),
                               stride=(1, 2), padding=0, dilation=(2, 1), groups=2),
    "2d-depthwise-same-even": dict(transposed=False, x_shape=(3, 3, 5, 6), w_shape=(3, 1, 4, 2),
                                   stride=1, padding="same", dilation=(1, 2), groups=3),
    "3d": dict(transposed=False, x_shape=(2, 2, 4, 3, 5), w_shape=(2, 2, 2, 1, 3),
               stride=(1, 1, 2), padding=(1, 0, 1), dilation=1, groups=1),
    "t1d-output-padding": dict(transposed=True, x_shape=(2, 2, 4), w_shape=(2, 3, 3), stride=2,
                               padding=1, dilation=1, groups=1, output_padding=1),
    "t2d-grouped": dict(transposed=True, x_shape=(1, 4, 3, 3), w_shape=(4, 1, 2, 3),
                        stride=(2, 3), padding=(0, 1), dilation=1, groups=2,
                        output_padding=(1, 2)),
    "t3d-depthwise-dilated": dict(transposed=True, x_shape=(3, 2, 2, 3, 2),
                                  w_shape=(2, 1, 2, 2, 1), stride=(1, 2, 1), padding=0,
                                  dilation=(2, 1, 1), groups=2, output_padding=(1, 1, 0)),
}
FORWARD = [n for n, c in GRID.items() if not c["transposed"]]


def hyper(case):
    """The hyper-parameters of ``case`` as keyword arguments of the functional API."""
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"])
    if case["transposed"]:
        kw.update(transposed=True, output_padding=case["output_padding"])
    return kw


def asym(case):
    return isinstance(case["padding"], tuple) and not isinstance(case["padding"][0], int)


# -- VJPs --------------------------------------------------------------------------------------

def check_vjps(case):
    ndim = len(case["w_shape"]) - 2
    x, w = torch.randn(case["x_shape"]), torch.randn(case["w_shape"])
    v = torch.randn(torch_conv(case)(x, w).shape)
    kw = hyper(case)
    if asym(case) or isinstance(case["padding"], str):
        # torch.nn.grad takes neither asymmetric nor string padding: autograd instead
        ref_x, ref_w = torch.autograd.grad(
            torch_conv(case)(x.requires_grad_(), w.requires_grad_()), (x, w), v)
    else:
        ref_x = GRAD_INPUT[ndim](x.shape, w, v, **kw)
        ref_w = GRAD_WEIGHT[ndim](x, w.shape, v, **kw)
    assert_close(TF.conv_input_vjp(x.shape, w.detach(), v, **kw), ref_x, "input VJP")
    assert_close(TF.conv_weight_vjp(x.detach(), w.shape, v, **kw), ref_w, "weight VJP")


@pytest.mark.parametrize("name", FORWARD)
def test_vjps_grid(name):
    check_vjps(GRID[name])


@given(conv_cases(max_ndim=3))
def test_vjps_hypothesis(case):
    check_vjps(case)


# -- KFC / KFAC-reduce -------------------------------------------------------------------------

def identity_weight(C, K):
    """``E[(c k), c', k'] = δ(c, c') δ(k, k')``: convolving with it unfolds the input."""
    P = math.prod(K)
    return torch.eye(C * P).reshape(C * P, C, *K)


def unfolded(x, case):
    """Explicit reference ``[N, C·∏K, L]``: (transpose-)unfolded input, rows like unfold's."""
    C, K = x.shape[1], case["w_shape"][2:]
    if not case["transposed"]:
        ref = dict(case, groups=1, w_shape=(C * math.prod(K), C, *K))
        return torch_conv(ref)(x, identity_weight(C, K)).flatten(2)
    E = identity_weight(C, K).reshape(C, math.prod(K), C * math.prod(K))
    E = E.permute(0, 2, 1).reshape(C, C * math.prod(K), *K)  # [c', (c k), k']
    ref = dict(case, groups=1, w_shape=tuple(E.shape))
    return torch_conv(ref)(x, E).flatten(2)


def reference_factors(x, case):
    """(KFC, KFAC-reduce) from the explicit unfolded input, per group."""
    G, N = case["groups"], x.shape[0]
    U = unfolded(x, case)
    U = U.reshape(N, G, U.shape[1] // G, U.shape[2])
    kfc = torch.einsum("ngil,ngjl->gij", U, U) / N
    mean = U.mean(-1)
    return kfc, torch.einsum("ngi,ngj->gij", mean, mean) / N


def check_factors(case, with_einconv=True):
    x = torch.randn(case["x_shape"])
    K = case["w_shape"][2:]
    kw = hyper(case)
    got_kfc, got_red = TF.kfc(x, K, **kw), TF.kfac_reduce(x, K, **kw)
    ref_kfc, ref_red = reference_factors(x, case)
    assert_close(got_kfc, ref_kfc, "KFC vs unfold")
    assert_close(got_red, ref_red, "KFAC-reduce vs unfold")
    if with_einconv and not case["transposed"] and not asym(case):
        for module, got in ((convNd_kfc, got_kfc), (convNd_kfac_reduce, got_red)):
            # einconv's own simplification mishandles size-1 legs; use its plain expression
            eq, operands, shape = module.einsum_expression(
                x, K, case["stride"], case["padding"], case["dilation"], case["groups"],
                simplify=False)
            assert_close(got, torch.einsum(eq, *operands).reshape(shape), "vs einconv")


@pytest.mark.parametrize("name", list(GRID))
def test_kronecker_factors_grid(name):
    check_factors(GRID[name])


@given(conv_cases(max_ndim=3))
def test_kronecker_factors_hypothesis(case):
    check_factors(case)


@given(conv_cases(transposed=True, max_ndim=3))
def test_kronecker_factors_transposed_hypothesis(case):
    check_factors(case)


def test_factor_shape_and_scale():
    x = torch.ones(4, 6, 5, 5)
    f = TF.kfc(x, (2, 3), groups=3)
    assert f.shape == (3, 2 * 6, 2 * 6)
    assert torch.allclose(f, torch.full_like(f, 4 * 3.0))  # ∏O = 4·3 windows, all ones, / N
    r = TF.kfac_reduce(x, (2, 3), groups=3)
    assert torch.allclose(r, torch.ones_like(r))


# -- GGN diagonal and Gram ---------------------------------------------------------------------

def brute_force_grads(x, w, s, case):
    """``g[z, n, w] = Σ_out S[z, n, out] ∂conv(x[n])[out]/∂W`` via per-sample jacrev."""
    f = torch_conv(case)
    per_sample = torch.func.jacrev(lambda w, xn: f(xn.unsqueeze(0), w)[0])
    J = torch.func.vmap(per_sample, in_dims=(None, 0))(w, x)  # [N, C_out, *O, *W.shape]
    return torch.einsum("znc,ncw->znw", s.flatten(2), J.flatten(1, x.dim() - 1).flatten(2))


def check_ggn(case, Z):
    x, w = torch.randn(case["x_shape"]), torch.randn(case["w_shape"])
    s = torch.randn(Z, *torch_conv(case)(x, w).shape)
    g = brute_force_grads(x, w, s, case)
    kw = hyper(case)
    K = case["w_shape"][2:]
    diag = TF.weight_ggn_diag(x, s, K, **kw)
    assert diag.shape == w.shape
    assert_close(diag.flatten(), (g ** 2).sum((0, 1)), "GGN diagonal")
    gram = TF.weight_ggn_gram(x, s, K, **kw)
    N = x.shape[0]
    assert_close(gram, torch.einsum("znw,ymw->znym", g, g).reshape(Z * N, Z * N), "Gram")


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("Z", [1, 3])
def test_ggn_grid(name, Z):
    check_ggn(GRID[name], Z)


@given(conv_cases(max_ndim=2))
def test_ggn_hypothesis(case):
    check_ggn(case, Z=2)


# -- errors ------------------------------------------------------------------------------------

def test_errors_name_the_argument():
    x, w = torch.randn(2, 3, 6), torch.randn(4, 3, 3)
    with pytest.raises(ShapeError, match=r"grad_output has shape \[2, 4, 5\], expected"):
        TF.conv_input_vjp(x.shape, w, torch.randn(2, 4, 5))
    with pytest.raises(InvalidArgumentError, match="input_size must be a sequence of ints"):
        TF.conv_input_vjp("abc", w, torch.randn(2, 4, 4))
    with pytest.raises(InvalidArgumentError, match="groups=2 must divide"):
        TF.kfc(x, 3, groups=2)
    with pytest.raises(InvalidArgumentError, match="stride must be positive"):
        TF.kfac_reduce(x, 3, stride=0)
    with pytest.raises(ShapeError, match="grad_output_factor must have shape"):
        TF.weight_ggn_diag(x, torch.randn(2, 4, 4), 3)
    with pytest.raises(ShapeError, match=r"\[Z, 2, 4, 4\]"):
        TF.weight_ggn_gram(x, torch.randn(1, 2, 4, 3), 3)
    with pytest.raises(ShapeError, match=r"input must have shape \(N, C_in, \*I\)"):
        TF.weight_ggn_diag(torch.randn(3, 5), torch.randn(1, 2, 4), 2)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        TF.kfc([1.0], 3)
