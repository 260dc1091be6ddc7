"""tndiag.curvature.kfac against factors written from the definitions (float64)."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import tndiag.curvature as tc
from tests.curvature.models import GRID, Seq, around, grid_model, inputs_for, targets_for
from tests.curvature.reference import dense_ref, kfac_ref

LOSSES = [nn.CrossEntropyLoss(), nn.CrossEntropyLoss(reduction="sum"), nn.MSELoss(),
          nn.MSELoss(reduction="sum")]
TOL = dict(rtol=1e-10, atol=1e-12)


def check(model, loss_fn, x, y, approx, fisher_type, merged=False, seed=None):
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    K = tc.kfac(model, loss_fn, x, y, kfac_approx=approx, fisher_type=fisher_type,
                mc_samples=2 if fisher_type == "mc" else 1, generator=gen,
                separate_weight_and_bias=not merged)
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    ref = kfac_ref(model, loss_fn, x, y, approx, fisher_type, merged,
                   mc_samples=2 if fisher_type == "mc" else 1, generator=gen)
    assert K.modules == list(ref)
    for name, (A, B) in ref.items():
        torch.testing.assert_close(K[name].input, A, **TOL, msg=f"{name}: input factor")
        torch.testing.assert_close(K[name].grad_output, B, **TOL, msg=f"{name}: grad factor")
    D = K.to_dense()
    torch.testing.assert_close(D, dense_ref(model, ref, merged), **TOL)
    v = torch.randn(K.dim, dtype=torch.float64)
    torch.testing.assert_close(K @ v, D @ v, **TOL)
    return K


@pytest.mark.parametrize("name", list(GRID))
@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_type2_factors_equal_the_reference(name, approx):
    model, (_, shape) = grid_model(name), GRID[name]
    loss_fn = LOSSES[len(name) % 4]
    check(model, loss_fn, inputs_for(shape), targets_for(loss_fn), approx, "type-2",
          merged=len(name) % 2 == 0)


@pytest.mark.parametrize("name", ["conv1d-s2-p1", "conv2d-g2-dil2", "convT2d-g2-dil2",
                                  "conv2d-reflect"])
@pytest.mark.parametrize("fisher_type", ["mc", "empirical"])
@pytest.mark.parametrize("loss_fn", [LOSSES[0], LOSSES[3]], ids=["ce-mean", "mse-sum"])
def test_mc_and_empirical_factors_equal_the_reference(name, fisher_type, loss_fn):
    model, (_, shape) = grid_model(name), GRID[name]
    for approx in ("expand", "reduce"):
        check(model, loss_fn, inputs_for(shape), targets_for(loss_fn), approx, fisher_type,
              seed=7)


def test_mc_with_a_fixed_generator_is_deterministic():
    model, (_, shape) = grid_model("conv2d-depthwise"), GRID["conv2d-depthwise"]
    x, y = inputs_for(shape), targets_for(LOSSES[0])
    Ks = [tc.kfac(model, LOSSES[0], x, y, generator=torch.Generator().manual_seed(3))
          for _ in range(2)]
    torch.testing.assert_close(Ks[0].to_dense(), Ks[1].to_dense(), rtol=0, atol=0)


def test_many_mc_samples_approach_type2():
    model, (_, shape) = grid_model("conv1d-s2-p1"), GRID["conv1d-s2-p1"]
    x, y = inputs_for(shape), targets_for(LOSSES[0])
    exact = tc.kfac(model, LOSSES[0], x, y, fisher_type="type-2").to_dense()
    mc = tc.kfac(model, LOSSES[0], x, y, fisher_type="mc", mc_samples=20000,
                 generator=torch.Generator().manual_seed(0)).to_dense()
    assert (mc - exact).norm() < 0.03 * exact.norm()


@pytest.mark.parametrize("approx", ["expand", "reduce"])
@pytest.mark.parametrize("merged", [False, True])
def test_linear_with_a_sequence_dimension(approx, merged):
    torch.manual_seed(0)
    model = Seq().double()
    x = torch.randn(4, 3, 4, dtype=torch.float64)
    for loss_fn in (LOSSES[0], LOSSES[2]):
        K = check(model, loss_fn, x, targets_for(loss_fn, N=4), approx, "type-2", merged)
        assert K["inner"].input.shape == (1, 4 + merged, 4 + merged)


def test_expand_and_reduce_differ_over_the_sequence_and_agree_without_one():
    torch.manual_seed(0)
    seq, x = Seq().double(), torch.randn(4, 3, 4, dtype=torch.float64)
    y = targets_for(LOSSES[0], N=4)
    e, r = (tc.kfac(seq, LOSSES[0], x, y, kfac_approx=a, fisher_type="type-2")
            for a in ("expand", "reduce"))
    assert not torch.allclose(e["inner"].input, r["inner"].input)
    torch.testing.assert_close(e["head"].input, r["head"].input, **TOL)


@st.composite
def layers(draw):
    ndim = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    G = draw(st.sampled_from([1, 2]))
    cin, cout = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2))
    if draw(st.booleans()) and not transposed:
        G, cout = cin, cin * draw(st.integers(1, 2))  # depthwise
    K = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    S = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    D = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    I = tuple(draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 3))
              for k, d in zip(K, D, strict=True))
    bias = draw(st.booleans())
    if transposed:
        P = tuple(draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(K, D, strict=True))
        op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(S, D, strict=True))
        cls = getattr(nn, f"ConvTranspose{ndim}d")
        layer = cls(cin, cout, K, stride=S, padding=P, output_padding=op, groups=G,
                    dilation=D, bias=bias)
    else:
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
        same = all(s == 1 for s in S) and draw(st.booleans())
        P = "same" if same else tuple(draw(st.integers(0, 1)) for _ in range(ndim))
        if mode != "zeros":
            I = tuple(max(i, 3) for i in I)
        cls = getattr(nn, f"Conv{ndim}d")
        layer = cls(cin, cout, K, stride=S, padding=P, dilation=D, groups=G, bias=bias,
                    padding_mode=mode)
    return layer, (cin, *I)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers(), st.sampled_from(["expand", "reduce"]), st.integers(0, 3), st.booleans(),
       st.integers(1, 3))
def test_drawn_layers_equal_the_reference(layer_and_shape, approx, loss_index, merged, N):
    layer, shape = layer_and_shape
    torch.manual_seed(0)
    model = around(layer, shape)
    loss_fn = LOSSES[loss_index]
    check(model, loss_fn, inputs_for(shape, N), targets_for(loss_fn, N), approx, "type-2",
          merged)


def test_inverse_is_the_damped_kronecker_inverse():
    model, (_, shape) = grid_model("conv2d-g2-dil2"), GRID["conv2d-g2-dil2"]
    x, y = inputs_for(shape, N=5), targets_for(LOSSES[0], N=5)
    K = tc.kfac(model, LOSSES[0], x, y, fisher_type="type-2")
    root = 0.1 ** 0.5
    Kd = K.inverse(damping=0.1)

    def damp(M):
        return M + root * torch.eye(M.shape[-1], dtype=M.dtype)
    damped = {n: (damp(K[n].input), damp(K[n].grad_output)) for n in K.modules}
    # the bias blocks' input factor 1 + √λ: scale B by it (B ⊗ (1 + √λ))
    Dd = dense_ref(model, damped, merged=False)
    for pos in _bias_rows(model):
        Dd[pos[:, None], pos[None, :]] *= 1 + root
    torch.testing.assert_close(Kd.to_dense() @ Dd, torch.eye(K.dim, dtype=torch.float64),
                               rtol=1e-9, atol=1e-9)
    v = [torch.randn_like(p) for p in K.params]
    flat = torch.cat([t.reshape(-1) for t in v])
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in Kd @ v]),
                               Kd.to_dense() @ flat)


def _bias_rows(model):
    offset = 0
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if m.bias is not None:
                start = offset + m.weight.numel()
                yield torch.arange(start, start + m.bias.numel())
            offset += sum(p.numel() for p in m.parameters(recurse=False))
