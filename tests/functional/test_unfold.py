"""tndiag.functional.unfold, fold and unfold_kernel against torch and explicit N-d references."""

import pytest
import torch
import torch.nn.functional as F
from conv_reference import (
    assert_matches,
    conv_reference,
    fold_reference,
    unfold_kernel_reference,
    unfold_reference,
)
from conv_strategies import conv_configs, unfold_configs
from hypothesis import given
from hypothesis import strategies as st

from tndiag.functional import fold, unfold, unfold_kernel

# torch warns that 'same' with an even kernel pads a copy of the input; that is expected
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

UNFOLD_GRID = [  # (input shape, kernel_size, dilation, padding, stride)
    ((2, 3, 9), (3,), 1, 0, 1),
    ((2, 3, 11), (2,), 2, 1, 3),
    ((1, 2, 10), (4,), 3, (2,), 2),
    ((2, 3, 8, 9), (3, 2), 1, 1, (2, 1)),
    ((1, 2, 7, 7), (2, 3), (2, 1), (0, 2), 3),
    ((2, 1, 6, 5), (1, 1), 1, 0, 2),
    ((1, 2, 5, 6, 4), (2, 3, 2), (1, 1, 2), 1, (1, 2, 1)),
    ((2, 1, 6, 4, 5), (3, 1, 2), 2, (2, 0, 1), 3),
    ((1, 1, 3, 4, 3, 4), (2, 2, 1, 3), 1, (1, 0, 0, 1), (2, 1, 1, 1)),  # 4-d
]


@pytest.mark.parametrize("x_shape, kernel_size, dilation, padding, stride", UNFOLD_GRID)
def test_unfold_grid_matches_reference(x_shape, kernel_size, dilation, padding, stride):
    x = torch.randn(x_shape)
    assert_matches(unfold(x, kernel_size, dilation, padding, stride),
                   unfold_reference(x, kernel_size, dilation, padding, stride))


@pytest.mark.parametrize("x_shape, kernel_size, dilation, padding, stride", UNFOLD_GRID)
def test_fold_grid_matches_reference(x_shape, kernel_size, dilation, padding, stride):
    cols = torch.randn(unfold_reference(torch.zeros(x_shape), kernel_size, dilation, padding,
                                        stride).shape)
    out = tuple(x_shape[2:])
    assert_matches(fold(cols, out, kernel_size, dilation, padding, stride),
                   fold_reference(cols, out, kernel_size, dilation, padding, stride))


@pytest.mark.parametrize("kernel_size, dilation, padding, stride", [
    (3, 1, 0, 1), (3, 1, 1, 1), (2, 2, 1, 2), ((3, 2), (1, 2), (2, 0), (1, 3)),
])
def test_unfold_and_fold_2d_match_torch(kernel_size, dilation, padding, stride):
    """torch's own 2-d unfold/fold (int arguments mean 2-d, batched and unbatched)."""
    x = torch.randn(2, 3, 8, 9)
    cols = unfold(x, kernel_size, dilation, padding, stride)
    assert_matches(cols, F.unfold(x, kernel_size, dilation, padding, stride))
    assert_matches(unfold(x[0], kernel_size, dilation, padding, stride),
                   F.unfold(x[0], kernel_size, dilation, padding, stride))
    v = torch.randn(cols.shape)
    assert_matches(fold(v, (8, 9), kernel_size, dilation, padding, stride),
                   F.fold(v, (8, 9), kernel_size, dilation, padding, stride))
    assert_matches(fold(v[1], (8, 9), kernel_size, dilation, padding, stride),
                   F.fold(v[1], (8, 9), kernel_size, dilation, padding, stride))


def test_fold_int_output_size_is_square_like_torch():
    v = torch.randn(1, 12, 16)
    assert_matches(fold(v, 5, 2, stride=1), F.fold(v, 5, 2, stride=1))


def test_unfold_is_adjoint_of_fold():
    """<unfold(x), v> == <x, fold(v)> for a 3-d configuration."""
    x = torch.randn(2, 2, 5, 4, 6)
    args = ((2, 2, 3), (1, 2, 1), (1, 0, 2), (2, 1, 2))
    cols = unfold(x, *args)
    v = torch.randn(cols.shape)
    lhs, rhs = (cols * v).sum(), (x * fold(v, (5, 4, 6), *args)).sum()
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs.item()))


@given(unfold_configs())
def test_unfold_hypothesis_matches_reference(cfg):
    x = torch.randn(cfg["x_shape"])
    K, D, S = cfg["kernel_size"], cfg["dilation"], cfg["stride"]
    assert_matches(unfold(x, K, D, cfg["padding"], S), unfold_reference(x, K, D, cfg["pairs"], S))


@given(unfold_configs(), st.booleans())
def test_fold_hypothesis_matches_reference(cfg, batched):
    K, D, S = cfg["kernel_size"], cfg["dilation"], cfg["stride"]
    zeros = torch.zeros(cfg["x_shape"])
    cols = torch.randn(unfold_reference(zeros, K, D, cfg["pairs"], S).shape)
    out = tuple(cfg["x_shape"][2:])
    ref = fold_reference(cols, out, K, D, cfg["pairs"], S)
    args = (K, D, cfg["padding"], S)
    if batched:
        assert_matches(fold(cols, out, *args), ref)
    else:
        assert_matches(fold(cols[0], out, *args), ref[0])


@pytest.mark.parametrize("w_shape, input_size, stride, padding, dilation, groups", [
    ((3, 2, 3), (7,), 2, 0, 1, 1),
    ((4, 1, 3), 10, 1, 1, 2, 2),
    ((4, 2, 3, 2), (6, 5), 1, "same", (1, 2), 1),
    ((6, 1, 2, 2), (5, 4), 2, ((1, 0), (0, 1)), 1, 6),
    ((2, 2, 2, 1, 2), (3, 4, 3), (1, 2, 1), 1, 1, 2),
])
def test_unfold_kernel_grid_matches_reference(w_shape, input_size, stride, padding, dilation,
                                              groups):
    w = torch.randn(w_shape)
    size = (input_size,) * (len(w_shape) - 2) if isinstance(input_size, int) else input_size
    T = unfold_kernel(w, input_size, stride, padding, dilation, groups)
    assert_matches(T, unfold_kernel_reference(w, size, stride, padding, dilation, groups))
    x = torch.randn(2, w_shape[1] * groups, *size)
    assert_matches(x.flatten(1) @ T.T,
                   conv_reference(x, w, None, stride, padding, dilation, groups).flatten(1))


@given(conv_configs(max_ndim=2))
def test_unfold_kernel_hypothesis_matches_reference(cfg):
    w = torch.randn(cfg["w_shape"])
    size = tuple(cfg["x_shape"][-(len(cfg["w_shape"]) - 2):])
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    assert_matches(unfold_kernel(w, size, *args), unfold_kernel_reference(w, size, *args))


def test_unfold_gradients_match_reference():
    x = torch.randn(2, 3, 6, 5, requires_grad=True)
    args = ((3, 2), (1, 2), 1, (2, 1))
    y = unfold(x, *args)
    v = torch.randn(y.shape)
    (ours,) = torch.autograd.grad(y, x, v)
    (ref,) = torch.autograd.grad(unfold_reference(x, *args), x, v)
    assert_matches(ours, ref)
