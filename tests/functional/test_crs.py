"""CRS weight gradients: probabilities, exactness at keep=1, unbiasedness, the module, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.functional.conv_reference import conv_reference
from tests.functional.conv_strategies import conv_configs
from tndiag.errors import InvalidArgumentError, ShapeError, TndiagError
from tndiag.functional.crs import crs_conv, crs_probabilities, crs_weight_vjp

# -- probabilities ------------------------------------------------------------------------------


def bisection_probabilities(w, keep):
    """Reference from the definition: bisect c in Σ min(1, c·w) = keep·T (zeros stay 0)."""
    k = keep * len(w)
    if sum(1 for v in w if v > 0) <= k:
        return [1.0 if v > 0 else 0.0 for v in w]
    lo, hi = 0.0, 1.0
    while sum(min(1.0, hi * v) for v in w) < k:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(min(1.0, mid * v) for v in w) < k else (lo, mid)
    return [min(1.0, hi * v) for v in w]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e3)), min_size=1, max_size=30),
       st.floats(0.01, 1.0))
def test_probabilities_match_bisection(w, keep):
    p = crs_probabilities(torch.tensor(w, dtype=torch.float64), keep)
    ref = bisection_probabilities(w, keep)
    assert p.tolist() == pytest.approx(ref, abs=1e-9)
    assert ((p >= 0) & (p <= 1)).all()
    nonzero = sum(1 for v in w if v > 0)
    assert p.sum().item() == pytest.approx(min(keep * len(w), nonzero), abs=1e-9)


def test_probabilities_rows_are_independent():
    w = torch.tensor([[8.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    p = crs_probabilities(w, 0.5)
    assert p.tolist() == [[1.0, 0.5, 0.5, 0.0], [0.5, 0.5, 0.5, 0.5]]


def test_probabilities_proportional_when_uncapped():
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    p = crs_probabilities(w, 0.25)
    assert torch.allclose(p, w / w.sum())


# -- exactness at keep=1 (float64 oracle: torch autograd) ---------------------------------------


def _exact(x, w_shape, v, cfg):
    w = torch.zeros(w_shape, dtype=x.dtype, requires_grad=True)
    y = conv_reference(x, w, None, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    (gw,) = torch.autograd.grad(y, w, v)
    return gw


def _case(cfg, seed=0):
    torch.manual_seed(seed)
    shape = cfg["x_shape"] if len(cfg["x_shape"]) == len(cfg["w_shape"]) else (1, *cfg["x_shape"])
    x = torch.randn(shape, dtype=torch.float64)
    w = torch.zeros(cfg["w_shape"], dtype=torch.float64)
    y = conv_reference(x, w, None, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    return x, torch.randn(y.shape, dtype=torch.float64)


def _hyper(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}


GRID = {
    "1d-stride-dilation": dict(x_shape=(3, 2, 11), w_shape=(4, 2, 3), stride=2, padding=1,
                               dilation=2, groups=1),
    "2d-groups-asym": dict(x_shape=(2, 4, 7, 6), w_shape=(6, 2, 3, 2), stride=(2, 1),
                           padding=((0, 1), (1, 0)), dilation=1, groups=2),
    "2d-same": dict(x_shape=(2, 3, 6, 5), w_shape=(4, 3, 2, 3), stride=1, padding="same",
                    dilation=(1, 2), groups=1),
    "3d-groups": dict(x_shape=(2, 3, 4, 5, 4), w_shape=(3, 1, 2, 3, 2), stride=(1, 2, 1),
                      padding=(1, 0, 1), dilation=1, groups=3),
}


@pytest.mark.parametrize("name", GRID)
def test_keep_one_is_exact_grid(name):
    cfg = GRID[name]
    x, v = _case(cfg)
    got = crs_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=1.0)
    assert torch.allclose(got, _exact(x, cfg["w_shape"], v, cfg), atol=1e-12, rtol=1e-10)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(conv_configs())
def test_keep_one_is_exact_random(cfg):
    x, v = _case(cfg)
    got = crs_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=1.0)
    assert torch.allclose(got, _exact(x, cfg["w_shape"], v, cfg), atol=1e-12, rtol=1e-10)


# -- unbiasedness -------------------------------------------------------------------------------

DRAWS = 2000


def _z_scores(draws, exact):
    """z-score of the empirical mean per entry: (mean - exact) / (std / √draws).

    Each draw is an independent, unbiased estimate, so by the central limit theorem each
    z-score is close to N(0, 1); the largest of a few hundred such scores exceeds 6 with
    probability below 1e-6, while a bias of even a few standard errors per entry would show.
    Entries whose draws never vary (every pair touching them has p = 1) must be exact.
    """
    mean, std = draws.mean(0), draws.std(0)
    fixed = std < 1e-12 * max(1.0, exact.abs().max().item())
    assert torch.allclose(mean[fixed], exact[fixed], atol=1e-10)
    return ((mean - exact)[~fixed] / (std[~fixed] / math.sqrt(len(draws)))).abs()


@pytest.mark.parametrize("name", GRID)
@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_unbiased(name, keep):
    cfg = GRID[name]
    x, v = _case(cfg, seed=1)
    exact = _exact(x, cfg["w_shape"], v, cfg)
    gen = torch.Generator().manual_seed(2)
    draws = torch.stack([crs_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=keep,
                                        generator=gen) for _ in range(DRAWS)])
    z = _z_scores(draws, exact)
    assert z.numel() > 0 and z.max().item() <= 6.0
    assert not torch.allclose(draws[0], exact)  # a single draw differs from the exact value


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(conv_configs(), st.sampled_from([0.3, 0.7]))
def test_unbiased_random(cfg, keep):
    """Drawn N = 1, 2, 3 convolutions (stride, padding incl. 'same', dilation, groups)."""
    x, v = _case(cfg, seed=3)
    exact = _exact(x, cfg["w_shape"], v, cfg)
    gen = torch.Generator().manual_seed(4)
    draws = torch.stack([crs_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=keep,
                                        generator=gen) for _ in range(DRAWS)])
    z = _z_scores(draws, exact)  # entries that never vary are checked exact inside
    assert z.numel() == 0 or z.max().item() <= 6.0


def test_expected_count_and_generator():
    """The probabilities sum to keep·T (the expected kept count); a generator fixes the draw."""
    x, v = torch.randn(4, 2, 9, dtype=torch.float64), torch.randn(4, 3, 9, dtype=torch.float64)
    gs = v.permute(0, 2, 1).reshape(-1, 3).norm(dim=1)
    us = torch.nn.functional.unfold(x[..., None], (3, 1), padding=(1, 0))
    p = crs_probabilities(gs * us.permute(0, 2, 1).reshape(-1, 6).norm(dim=1), 0.4)
    assert p.sum().item() == pytest.approx(0.4 * 36)
    g1 = crs_weight_vjp(x, (3, 2, 3), v, padding=1, keep=0.4,
                        generator=torch.Generator().manual_seed(5))
    g2 = crs_weight_vjp(x, (3, 2, 3), v, padding=1, keep=0.4,
                        generator=torch.Generator().manual_seed(5))
    assert torch.equal(g1, g2)  # the generator fixes the draw


# -- the module: exact forward and input gradient, what it saves --------------------------------


def test_crs_conv_forward_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    kw = dict(stride=(1, 2), padding=1, dilation=1, groups=2)
    y_ref = torch.nn.functional.conv2d(x, w, b, **kw)
    v = torch.randn_like(y_ref)
    ref = torch.autograd.grad(y_ref, (x, w, b), v)
    y = crs_conv(x, w, b, **kw, keep=1.0)
    assert torch.allclose(y, y_ref, atol=1e-12)
    for got, want in zip(torch.autograd.grad(y, (x, w, b), v), ref):
        assert torch.allclose(got, want, atol=1e-11)
    gx, gw, gb = torch.autograd.grad(crs_conv(x, w, b, **kw, keep=0.3), (x, w, b), v)
    assert torch.allclose(gx, ref[0], atol=1e-11) and torch.allclose(gb, ref[2], atol=1e-11)
    assert not torch.allclose(gw, ref[1])


def test_crs_conv_saves_the_whole_input():
    """CRS needs ‖G_t‖ for its probabilities, so the forward pass cannot drop any input."""
    x = torch.randn(2, 3, 8, 8)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t,
                                                  lambda t: t):
        crs_conv(x, w, padding=1, keep=0.1)
    assert saved == [x.shape, w.shape]


# -- errors -------------------------------------------------------------------------------------


def _xv():
    return torch.randn(2, 3, 7), torch.randn(2, 4, 5)


@pytest.mark.parametrize("keep", [0.0, -0.5, 1.5, math.nan, True, "0.5", None])
def test_bad_keep(keep):
    X, V = _xv()
    with pytest.raises(InvalidArgumentError, match="keep"):
        crs_weight_vjp(X, (4, 3, 3), V, keep=keep)
    with pytest.raises(InvalidArgumentError, match="keep"):
        crs_probabilities(torch.ones(3), keep)


def test_bad_shapes_and_types():
    X, V = _xv()
    with pytest.raises(ShapeError, match="grad_output"):
        crs_weight_vjp(X, (4, 3, 3), torch.randn(2, 4, 6), keep=0.5)
    with pytest.raises(ShapeError, match="input"):
        crs_weight_vjp(X[0], (4, 3, 3), V[0], keep=0.5)
    with pytest.raises(TypeError, match="grad_output"):
        crs_weight_vjp(X, (4, 3, 3), V.tolist(), keep=0.5)
    with pytest.raises(InvalidArgumentError, match="weight_size"):
        crs_weight_vjp(X, 4, V, keep=0.5)
    with pytest.raises(InvalidArgumentError, match="floating"):
        crs_weight_vjp(X.long(), (4, 3, 3), V.long(), keep=0.5)
    with pytest.raises(InvalidArgumentError, match="weights"):
        crs_probabilities(torch.tensor([1.0, -1.0]), 0.5)
    with pytest.raises(ShapeError, match="batched"):
        crs_conv(X[0], torch.randn(4, 3, 3), keep=0.5)
    with pytest.raises(TndiagError, match="stride"):
        crs_weight_vjp(X, (4, 3, 3), V, stride=0, keep=0.5)


def test_conv_weight_vjp_has_the_crs_row():
    """``conv_weight_vjp(sample="crs")`` is a CRS draw; keep=1 is the exact gradient."""
    from tndiag.functional import conv_weight_vjp

    cfg = GRID["2d-groups-asym"]
    x, v = _case(cfg, seed=3)
    got = conv_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=0.4, sample="crs",
                          generator=torch.Generator().manual_seed(7))
    want = crs_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=0.4,
                          generator=torch.Generator().manual_seed(7))
    assert torch.equal(got, want)
    exact = conv_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=1.0, sample="crs")
    assert torch.allclose(exact, _exact(x, cfg["w_shape"], v, cfg), atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="crs"):
        conv_weight_vjp(x, cfg["w_shape"], v, **_hyper(cfg), keep=0.4, sample="rows")
