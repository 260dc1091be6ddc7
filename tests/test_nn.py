"""tndiag.nn modules: torch's constructor arguments and state dicts, same outputs and gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tndiag.nn as tnn

# torch warns that 'same' with an even kernel pads a copy of the input; that is expected
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

CONV_CASES = [  # (class name, constructor kwargs, input shape)
    ("Conv1d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                    groups=2), (2, 4, 11)),
    ("Conv1d", dict(in_channels=2, out_channels=3, kernel_size=4, padding="same",
                    dilation=2, padding_mode="reflect"), (2, 2, 12)),
    ("Conv2d", dict(in_channels=3, out_channels=4, kernel_size=(3, 2), stride=(2, 1),
                    padding=(1, 0), bias=False), (2, 3, 9, 8)),
    ("Conv2d", dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, padding=1,
                    padding_mode="circular"), (1, 4, 6, 7)),
    ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=3, padding=2,
                    padding_mode="replicate", dilation=2), (2, 5, 6)),  # unbatched
    ("Conv2d", dict(in_channels=3, out_channels=2, kernel_size=2, padding="valid"), (1, 3, 5, 5)),
    ("Conv3d", dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 2), stride=(1, 2, 1),
                    padding=1, groups=2), (2, 2, 4, 6, 5)),
    ("ConvTranspose1d", dict(in_channels=4, out_channels=2, kernel_size=3, stride=2,
                             output_padding=1, groups=2), (2, 4, 5)),
    ("ConvTranspose2d", dict(in_channels=3, out_channels=2, kernel_size=(3, 2), stride=(2, 3),
                             padding=(1, 0), dilation=(1, 2), bias=False), (2, 3, 4, 3)),
    ("ConvTranspose3d", dict(in_channels=2, out_channels=2, kernel_size=2, stride=2,
                             output_padding=(1, 0, 1)), (1, 2, 3, 2, 3)),
]


def _pair(name, kwargs):
    torch.manual_seed(1)
    theirs = getattr(torch.nn, name)(**kwargs)
    ours = getattr(tnn, name)(**kwargs)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _close(a, b):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= 1e-10 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("name, kwargs, x_shape", CONV_CASES,
                         ids=[f"{c[0]}-{n}" for n, c in enumerate(CONV_CASES)])
def test_module_matches_torch_forward_and_backward(name, kwargs, x_shape):
    ours, theirs = _pair(name, kwargs)
    assert isinstance(ours, getattr(torch.nn, name))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(x_shape, requires_grad=True)
    y_ours, y_theirs = ours(x), theirs(x)
    _close(y_ours, y_theirs)
    v = torch.randn(y_theirs.shape)
    grads_ours = torch.autograd.grad(y_ours, [x, *ours.parameters()], v)
    grads_theirs = torch.autograd.grad(y_theirs, [x, *theirs.parameters()], v)
    for a, b in zip(grads_ours, grads_theirs):
        _close(a, b)


@pytest.mark.parametrize("output_size", [[9, 11], [2, 3, 10, 12], [10, 10]])
def test_conv_transpose_output_size_matches_torch(output_size):
    kwargs = dict(in_channels=3, out_channels=2, kernel_size=3, stride=(2, 3), padding=1)
    ours, theirs = _pair("ConvTranspose2d", kwargs)
    x = torch.randn(2, 3, 5, 4)
    _close(ours(x, output_size=output_size), theirs(x, output_size=output_size))


def test_conv_transpose_rejects_bad_output_size_like_torch():
    ours, _ = _pair("ConvTranspose1d", dict(in_channels=1, out_channels=1, kernel_size=3,
                                            stride=2))
    with pytest.raises(ValueError, match="output size"):
        ours(torch.randn(1, 1, 4), output_size=[20])


def test_unfold_and_fold_modules_match_torch():
    x = torch.randn(2, 3, 8, 7, requires_grad=True)
    args = dict(kernel_size=(3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
    cols_ours, cols_theirs = tnn.Unfold(**args)(x), torch.nn.Unfold(**args)(x)
    _close(cols_ours, cols_theirs)
    v = torch.randn(cols_theirs.shape)
    _close(torch.autograd.grad(cols_ours, x, v)[0], torch.autograd.grad(cols_theirs, x, v)[0])
    _close(tnn.Fold((8, 7), **args)(v), torch.nn.Fold((8, 7), **args)(v))


def test_modules_are_parameterised_like_torch():
    """Constructor defaults, parameters and repr come from torch."""
    ours, theirs = tnn.Conv2d(3, 5, 3, padding_mode="reflect"), torch.nn.Conv2d(
        3, 5, 3, padding_mode="reflect")
    assert repr(ours) == repr(theirs)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    with pytest.raises(ValueError):
        tnn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_module_in_a_sequential_trains():
    """One SGD step through a tndiag network equals the same step through torch's."""
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.ConvTranspose2d(4, 1, 2, stride=2))
    ours = torch.nn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                               tnn.ConvTranspose2d(4, 1, 2, stride=2))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 2, 5, 5)
    for model in (ours, theirs):
        model(x).square().mean().backward()
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        _close(a.detach(), b.detach())


@st.composite
def conv_modules(draw):
    """Constructor arguments of a random Conv{1,2,3}d valid for torch (any padding_mode)."""
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    same = draw(st.booleans())
    stride = 1 if same else draw(st.integers(1, 2))
    padding = "same" if same else tuple(draw(st.integers(0, 1)) for _ in range(ndim))
    kwargs = dict(in_channels=groups * draw(st.integers(1, 2)),
                  out_channels=groups * draw(st.integers(1, 2)), kernel_size=kernel,
                  stride=stride, padding=padding, dilation=draw(st.integers(1, 2)),
                  groups=groups, bias=draw(st.booleans()), padding_mode=mode)
    size = 5 if ndim == 3 else 6  # > any padding, >= the dilated kernel (<= 5)
    return f"Conv{ndim}d", kwargs, (2, kwargs["in_channels"], *[size] * ndim)


@settings(max_examples=60)  # the functional layer below already gets 300 per function
@given(conv_modules())
def test_random_conv_modules_match_torch(case):
    name, kwargs, x_shape = case
    ours, theirs = _pair(name, kwargs)
    x = torch.randn(x_shape)
    with torch.no_grad():
        _close(ours(x), theirs(x))


def test_float32_module_matches_torch_within_float32_precision():
    theirs = torch.nn.Conv2d(3, 4, 3, padding=1, dtype=torch.float32)
    ours = tnn.Conv2d(3, 4, 3, padding=1, dtype=torch.float32)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 7, 7, dtype=torch.float32)
    y = ours(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, theirs(x), atol=1e-5, rtol=1e-4)
