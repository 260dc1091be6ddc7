"""tndiag.functional.conv and conv_transpose against torch's kernels (float64, 1e-10)."""

import itertools

import pytest
import torch
from conv_reference import TORCH_CONV_T, assert_matches, conv_nd_reference, conv_reference
from conv_strategies import conv_configs
from hypothesis import given

from tndiag.functional import conv, conv_transpose

# torch warns that 'same' with an even kernel pads a copy of the input; that is expected
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _tensors(x_shape, w_shape, bias):
    x, w = torch.randn(x_shape), torch.randn(w_shape)
    b = torch.randn(bias) if bias else None
    return x, w, b


def _conv_grid():
    """N = 1..3 × stride 1..3 × dilation 1..3, rotating groups, padding, bias and batch."""
    cases = []
    group_kinds = ["1", "2", "depthwise"]
    paddings = [0, 1, "tuple", "valid", "pairs"]
    for n, (ndim, stride, dilation) in enumerate(itertools.product((1, 2, 3), (1, 2, 3),
                                                                   (1, 2, 3))):
        kind = group_kinds[n % 3]
        groups, cin, cout = {"1": (1, 3, 2), "2": (2, 4, 6), "depthwise": (4, 4, 4)}[kind]
        K = (3, 2, 3)[:ndim] if ndim < 3 else (2, 3, 2)
        padding = paddings[n % len(paddings)]
        if padding == "tuple":
            padding = tuple(range(ndim))
        elif padding == "pairs":
            padding = tuple((d % 2, 1) for d in range(ndim))
        size = 9 if ndim < 3 else 8
        x_shape = (2, cin, *(size - d for d in range(ndim)))
        if n % 4 == 3:
            x_shape = x_shape[1:]  # unbatched
        cases.append(pytest.param(x_shape, (cout, cin // groups, *K), stride, padding,
                                  dilation, groups, n % 2 == 0,
                                  id=f"{ndim}d-s{stride}-d{dilation}-g{kind}-p{padding}"))
    return cases


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias",
                         _conv_grid())
def test_conv_grid_matches_torch(x_shape, w_shape, stride, padding, dilation, groups, bias):
    x, w, b = _tensors(x_shape, w_shape, (w_shape[0],) if bias else None)
    assert_matches(conv(x, w, b, stride, padding, dilation, groups),
                   conv_reference(x, w, b, stride, padding, dilation, groups))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("K", [3, 4])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_conv_same_padding_matches_torch(ndim, K, dilation):
    """'same' with odd and even kernels: torch puts the extra pixel on the right."""
    size = 7 if ndim < 3 else 5
    x, w, b = _tensors((2, 2, *[size] * ndim), (3, 2, *[K] * ndim), (3,))
    assert_matches(conv(x, w, b, padding="same", dilation=dilation),
                   conv_reference(x, w, b, 1, "same", dilation, 1))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("stride, padding, output_padding, dilation, groups", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (3, 0, 2, 1, 2), (2, 1, 0, 2, "depthwise"),
    (1, 2, 1, 2, 1), (3, (1, 0, 2), (2, 0, 1), (1, 2, 1), 2),
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose_grid_matches_torch(ndim, stride, padding, output_padding, dilation,
                                           groups, bias):
    def cut(v):
        return v[:ndim] if isinstance(v, tuple) else v

    padding, output_padding, dilation = cut(padding), cut(output_padding), cut(dilation)
    groups, cin, cout_g = (4, 4, 1) if groups == "depthwise" else (groups, 2 * groups, 3)
    size = 5 if ndim < 3 else 3
    x, w, b = _tensors((2, cin, *[size] * ndim), (cin, cout_g, *[3] * ndim),
                       (cout_g * groups,) if bias else None)
    ours = conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation)
    ref = TORCH_CONV_T[ndim](x, w, b, stride, padding, output_padding, groups, dilation)
    assert_matches(ours, ref)


def test_conv_unbatched_and_transposed_unbatched():
    x, w, b = _tensors((3, 8, 7), (4, 3, 2, 3), (4,))
    assert_matches(conv(x, w, b, 2, 1), conv_reference(x, w, b, 2, 1, 1, 1))
    wt = torch.randn(3, 2, 3, 3)
    assert_matches(conv_transpose(x, wt, None, 2, 1, 1),
                   torch.nn.functional.conv_transpose2d(x, wt, None, 2, 1, 1))


def test_conv_four_spatial_dims_matches_unfold_reference():
    x, w = torch.randn(1, 2, 4, 3, 5, 4), torch.randn(3, 2, 2, 1, 3, 2)
    stride, padding, dilation = (1, 2, 1, 1), (1, 0, 1, 0), (1, 1, 2, 1)
    assert_matches(conv(x, w, None, stride, padding, dilation),
                   conv_nd_reference(x, w, stride, padding, dilation))


def test_conv_accepts_lists_and_caches_program():
    x, w = torch.randn(1, 2, 6, 6), torch.randn(2, 2, 3, 3)
    first = conv(x, w, stride=[2, 1], padding=[1, 0])
    assert_matches(first, conv_reference(x, w, None, (2, 1), (1, 0), 1, 1))
    from tndiag.functional.conv import _conv_call

    before = _conv_call.cache_info().hits
    conv(x, w, stride=[2, 1], padding=[1, 0])
    assert _conv_call.cache_info().hits == before + 1


@given(conv_configs())
def test_conv_hypothesis_matches_torch(cfg):
    x, w, b = _tensors(cfg["x_shape"], cfg["w_shape"], cfg["bias"])
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    assert_matches(conv(x, w, b, *args), conv_reference(x, w, b, *args))


@given(conv_configs(transposed=True))
def test_conv_transpose_hypothesis_matches_torch(cfg):
    x, w, b = _tensors(cfg["x_shape"], cfg["w_shape"], cfg["bias"])
    args = (cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"],
            cfg["dilation"])
    ndim = len(cfg["w_shape"]) - 2
    assert_matches(conv_transpose(x, w, b, *args), TORCH_CONV_T[ndim](x, w, b, *args))


@pytest.mark.parametrize("ndim", [1, 2])
def test_conv_gradcheck(ndim):
    """Gradients w.r.t. input, weight and bias pass torch.autograd.gradcheck."""
    x = torch.randn(1, 4, *[5 - ndim] * ndim, requires_grad=True)
    w = torch.randn(4, 2, *[4 - ndim] * ndim, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: conv(x, w, b, stride=2, padding=1, dilation=1, groups=2), (x, w, b))


def test_conv_and_transpose_gradients_match_torch():
    x = torch.randn(2, 4, 7, 6, requires_grad=True)
    w = torch.randn(6, 2, 3, 2, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    y = conv(x, w, b, 2, (1, 1), (1, 2), 2)
    v = torch.randn(y.shape)
    ours = torch.autograd.grad(y, (x, w, b), v)
    ref = torch.autograd.grad(conv_reference(x, w, b, 2, (1, 1), (1, 2), 2), (x, w, b), v)
    for a, r in zip(ours, ref):
        assert_matches(a, r)
    wt = torch.randn(4, 3, 3, 3, requires_grad=True)
    y = conv_transpose(x, wt, None, 2, 1, 1)
    v = torch.randn(y.shape)
    ours = torch.autograd.grad(y, (x, wt), v)
    ref = torch.autograd.grad(
        torch.nn.functional.conv_transpose2d(x, wt, None, 2, 1, 1), (x, wt), v)
    for a, r in zip(ours, ref):
        assert_matches(a, r)
