"""tndiag.curvature.ggn_diag against a brute-force per-sample-Jacobian GGN (float64)."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import tndiag.curvature as tc
from tests.curvature.models import GRID, Seq, around, grid_model, inputs_for, targets_for
from tests.curvature.reference import columns, ggn_diag_ref, layer_io
from tests.curvature.test_kfac import LOSSES, layers

TOL = dict(rtol=1e-10, atol=1e-12)


def check(model, loss_fn, x, y):
    got = tc.ggn_diag(model, loss_fn, x, y)
    ref = ggn_diag_ref(model, loss_fn, x, y)
    assert list(got) == list(ref)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], **TOL, msg=name)


@pytest.mark.parametrize("name", list(GRID))
def test_exact_diagonal_equals_the_brute_force_ggn(name):
    model, (_, shape) = grid_model(name), GRID[name]
    loss_fn = LOSSES[len(name) % 4]
    check(model, loss_fn, inputs_for(shape), targets_for(loss_fn))


def test_linear_with_a_sequence_dimension():
    torch.manual_seed(0)
    model, x = Seq().double(), torch.randn(3, 3, 4, dtype=torch.float64)
    for loss_fn in LOSSES:
        check(model, loss_fn, x, targets_for(loss_fn))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers(), st.integers(0, 3), st.integers(1, 3))
def test_drawn_layers_equal_the_brute_force_ggn(layer_and_shape, loss_index, N):
    layer, shape = layer_and_shape
    torch.manual_seed(0)
    loss_fn = LOSSES[loss_index]
    check(around(layer, shape), loss_fn, inputs_for(shape, N), targets_for(loss_fn, N))


@pytest.mark.parametrize("fisher_type", ["mc", "empirical"])
def test_mc_and_empirical_diagonals_equal_the_squared_backpropagated_columns(fisher_type):
    model, (_, shape) = grid_model("convT2d-g2-dil2"), GRID["convT2d-g2-dil2"]
    loss_fn, x = LOSSES[0], inputs_for(shape)
    y = targets_for(loss_fn)
    got = tc.ggn_diag(model, loss_fn, x, y, fisher_type=fisher_type, mc_samples=3,
                      generator=torch.Generator().manual_seed(5))
    # reference: Σ_{z,n} (per-sample gradient of the parameters for column z)²
    f, io = layer_io(model, x)
    S = columns(loss_fn, f, y, fisher_type, 3, torch.Generator().manual_seed(5))
    params = dict(model.named_parameters())
    ref = {k: torch.zeros_like(p) for k, p in params.items()}
    for z in range(S.shape[0]):
        for n in range(x.shape[0]):
            fz = model(x[n:n + 1])
            gs = torch.autograd.grad(fz, list(params.values()), S[z, n:n + 1])
            for k, g in zip(params, gs, strict=True):
                ref[k] += g.square()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], **TOL, msg=k)


def test_diagonal_covers_only_the_chosen_params():
    model, (_, shape) = grid_model("conv1d-s2-p1"), GRID["conv1d-s2-p1"]
    x, y = inputs_for(shape), targets_for(LOSSES[0])
    got = tc.ggn_diag(model, LOSSES[0], x, y, params=[model[0].weight, model[3].bias])
    ref = ggn_diag_ref(model, LOSSES[0], x, y)
    assert list(got) == ["0.weight", "3.bias"]
    for k in got:
        torch.testing.assert_close(got[k], ref[k], **TOL)
    assert isinstance(model[0], nn.Conv1d)


def test_per_sample_chunks_give_the_same_diagonal(monkeypatch):
    from tndiag.curvature import factors
    model, (_, shape) = grid_model("conv2d-depthwise"), GRID["conv2d-depthwise"]
    x, y = inputs_for(shape), targets_for(LOSSES[0])
    whole = tc.ggn_diag(model, LOSSES[0], x, y)
    monkeypatch.setattr(factors, "PER_SAMPLE_BUDGET", 1)  # one column z at a time
    chunked = tc.ggn_diag(model, LOSSES[0], x, y)
    for k in whole:
        torch.testing.assert_close(chunked[k], whole[k], rtol=1e-12, atol=1e-14)
