"""tndiag.curvature reproduces curvlinops' KFAC and BackPACK's DiagGGNExact / KFLR where those
libraries support the layer (groups = 1; curvlinops: 2-d convolutions only)."""

import math

import pytest
import torch
from torch import nn

import tndiag.curvature as tc
from tests.curvature.models import around, inputs_for, targets_for

curvlinops = pytest.importorskip("curvlinops")
backpack = pytest.importorskip("backpack")

TOL = dict(rtol=1e-9, atol=1e-12)
CONV2D = {
    "plain": (lambda: nn.Conv2d(2, 3, 3), (2, 5, 5)),
    "stride-pad": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 6, 5)),
    "dilation": (lambda: nn.Conv2d(2, 2, 2, dilation=2, padding=(1, 0)), (2, 5, 5)),
    "nobias": (lambda: nn.Conv2d(2, 2, (1, 3), bias=False), (2, 3, 5)),
}
LOSSES = {"ce-mean": nn.CrossEntropyLoss(), "mse-sum": nn.MSELoss(reduction="sum")}


def _model(name):
    make, shape = CONV2D[name]
    torch.manual_seed(len(name))
    return around(make(), shape), shape


@pytest.mark.parametrize("name", list(CONV2D))
@pytest.mark.parametrize("approx", ["expand", "reduce"])
@pytest.mark.parametrize("fisher_type", ["type-2", "empirical"])
@pytest.mark.parametrize("loss", list(LOSSES))
def test_dense_kfac_equals_curvlinops(name, approx, fisher_type, loss):
    model, shape = _model(name)
    loss_fn = LOSSES[loss]
    x, y = inputs_for(shape, N=4), targets_for(loss_fn, N=4)
    merged = name == "stride-pad"
    ours = tc.kfac(model, loss_fn, x, y, kfac_approx=approx, fisher_type=fisher_type,
                   separate_weight_and_bias=not merged).to_dense()
    theirs = curvlinops.KFACLinearOperator(
        model, loss_fn, list(model.parameters()), [(x, y)], fisher_type=fisher_type,
        kfac_approx=approx, check_deterministic=False, separate_weight_and_bias=not merged)
    torch.testing.assert_close(ours, theirs @ torch.eye(theirs.shape[1]), **TOL)


GGN_LAYERS = {
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1), (2, 7)),
    "conv2d-dil": (lambda: nn.Conv2d(2, 2, 3, dilation=2), (2, 5, 6)),
    "conv3d": (lambda: nn.Conv3d(1, 2, 2, padding=1), (1, 2, 3, 2)),
    # BackPACK 1.7.1 fails on output_padding > 0 (einsum size mismatch); ours is tested in
    # test_ggn_diag.py
    "convT1d": (lambda: nn.ConvTranspose1d(2, 2, 3, stride=2), (2, 4)),
    "convT2d": (lambda: nn.ConvTranspose2d(2, 3, 2, padding=1, dilation=2), (2, 3, 3)),
    "convT3d": (lambda: nn.ConvTranspose3d(1, 2, 2, stride=(1, 2, 1)), (1, 2, 2, 2)),
}


@pytest.mark.parametrize("name", list(GGN_LAYERS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_ggn_diag_equals_backpack_diag_ggn_exact(name, loss):
    from backpack import backpack as context
    from backpack import extend
    from backpack.extensions import DiagGGNExact

    make, shape = GGN_LAYERS[name]
    torch.manual_seed(0)
    model, loss_fn = around(make(), shape), LOSSES[loss]
    x, y = inputs_for(shape, N=3), targets_for(loss_fn, N=3)
    ours = tc.ggn_diag(model, loss_fn, x, y)
    bp_model, bp_loss = extend(model), extend(type(loss_fn)(reduction=loss_fn.reduction))
    with context(DiagGGNExact()):
        bp_loss(bp_model(x), y).backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(ours[n], p.diag_ggn_exact, **TOL, msg=n)


@pytest.mark.parametrize("name", list(CONV2D))
def test_factors_reach_backpack_kflr_scales(name):
    """BackPACK's KFLR of a convolution is (our reduce B) ⊗ (T · our expand A)."""
    from backpack import backpack as context
    from backpack import extend
    from backpack.extensions import KFLR

    model, shape = _model(name)
    x, y = inputs_for(shape, N=4), targets_for(LOSSES["ce-mean"], N=4)
    expand = tc.kfac(model, LOSSES["ce-mean"], x, y, fisher_type="type-2")
    reduce = tc.kfac(model, LOSSES["ce-mean"], x, y, fisher_type="type-2",
                     kfac_approx="reduce")
    with context(KFLR()):
        extend(nn.CrossEntropyLoss())(extend(model)(x), y).backward()
    T = math.prod(model[0](x).shape[2:])
    B, A = model[0].weight.kflr
    torch.testing.assert_close(B, reduce["0"].grad_output[0], **TOL)
    torch.testing.assert_close(A, T * expand["0"].input[0], **TOL)
    B, A = model[3].weight.kflr  # Linear without weight sharing: all conventions agree
    torch.testing.assert_close(B, expand["3"].grad_output[0], **TOL)
    torch.testing.assert_close(A, expand["3"].input[0], **TOL)
