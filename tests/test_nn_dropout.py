"""Tensor dropout in modules: ``Conv{1,2,3}d(grad_keep=, grad_sample=)``, ``tensor_dropout`` and
``restore``. Oracles: torch's modules with the same parameters (outputs, input and bias
gradients exact), and 2,000 backward passes for the weight gradient's mean (the z-score
bound of tests/functional/test_dropout.py)."""

import math

import pytest
import torch
from functional.test_dropout import assert_unbiased

import tndiag.nn as tnn
from tndiag.errors import InvalidArgumentError

TORCH = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
OURS = {1: tnn.Conv1d, 2: tnn.Conv2d, 3: tnn.Conv3d}

CASES = [
    (1, dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1), (3, 2, 9)),
    (2, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), padding=(1, 0), groups=2,
             dilation=(1, 2)), (2, 4, 6, 7)),
    (3, dict(in_channels=2, out_channels=2, kernel_size=2, padding="same"), (2, 2, 4, 3, 3)),
]


def _pair(ndim, kwargs, keep=0.5, sample="spatial", seed=0):
    torch.manual_seed(seed)
    theirs = TORCH[ndim](**kwargs)
    ours = OURS[ndim](**kwargs, grad_keep=keep, grad_sample=sample)
    ours.load_state_dict(theirs.state_dict())
    ours.grad_generator = torch.Generator().manual_seed(seed + 1)
    return ours, theirs


def _grads(module, x, v):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = module(x)
    y.backward(v)
    return y.detach(), x.grad, module.weight.grad, module.bias.grad


def _saved_shapes(module, x):
    shapes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t,
                                                  lambda t: t):
        module(x)
    return shapes


@pytest.mark.parametrize("sample", ["spatial", "channel"])
@pytest.mark.parametrize("ndim,kwargs,x_shape", CASES)
def test_output_input_and_bias_gradients_exact_weight_gradient_estimated(ndim, kwargs, x_shape,
                                                                        sample):
    ours, theirs = _pair(ndim, kwargs, sample=sample)
    x = torch.randn(x_shape)
    v = torch.randn(theirs(x).shape)
    y, gx, gw, gb = _grads(ours, x, v)
    want = _grads(theirs, x, v)
    for got, exact in zip((y, gx, gb), (want[0], want[1], want[3])):
        torch.testing.assert_close(got, exact, rtol=1e-10, atol=1e-10)
    assert gw.shape == want[2].shape and (gw - want[2]).abs().max() > 1e-3


@pytest.mark.parametrize("sample", ["spatial", "channel"])
@pytest.mark.parametrize("ndim,kwargs,x_shape", CASES)
def test_weight_gradient_is_unbiased_over_draws(ndim, kwargs, x_shape, sample):
    ours, theirs = _pair(ndim, kwargs, keep=0.4, sample=sample)
    x = torch.randn(x_shape)
    v = torch.randn(theirs(x).shape)
    exact = _grads(theirs, x, v)[2]
    draws = []
    for _ in range(2000):
        ours.weight.grad = None
        ours(x).backward(v)
        draws.append(ours.weight.grad.clone())
    assert_unbiased(torch.stack(draws), exact)


@pytest.mark.parametrize("sample", ["spatial", "channel"])
@pytest.mark.parametrize("ndim,kwargs,x_shape", CASES)
def test_only_the_kept_slices_of_the_input_are_saved(ndim, kwargs, x_shape, sample):
    ours, theirs = _pair(ndim, kwargs, keep=0.5, sample=sample)
    x = torch.randn(x_shape, requires_grad=True)
    shapes = _saved_shapes(ours, x)
    weight, (kept, positions) = tuple(ours.weight.shape), (shapes[0], shapes[-1])
    assert shapes == [kept, weight, positions], shapes
    axis = 2 if sample == "spatial" else 1
    groups = kwargs.get("groups", 1) if sample == "channel" else 1
    assert kept[axis] == positions[0] * groups <= x_shape[axis]  # the kept slices, no more
    assert kept[:axis] + kept[axis + 1:] == x_shape[:axis] + x_shape[axis + 1:]
    whole = max(math.prod(shape) for shape in _saved_shapes(theirs, x))
    assert whole >= math.prod(x_shape)  # torch's module saves the whole (maybe padded) input


@pytest.mark.parametrize("sample,axis", [("spatial", 2), ("channel", 1)])
def test_saved_input_shrinks_with_keep(sample, axis):
    ours, _ = _pair(2, dict(in_channels=64, out_channels=4, kernel_size=3, groups=2),
                    keep=0.25, sample=sample)
    x = torch.randn(2, 64, 64, 8, requires_grad=True)
    kept = _saved_shapes(ours, x)[0]
    assert kept[axis] < 0.4 * 64 and kept[:axis] + kept[axis + 1:] == (2, 64, 64, 8)[:axis] + (
        2, 64, 64, 8)[axis + 1:]


@pytest.mark.parametrize("ndim,kwargs,x_shape", CASES)
def test_keep_one_eval_and_no_grad_are_the_plain_module(ndim, kwargs, x_shape):
    plain, _ = _pair(ndim, kwargs, keep=1.0)
    ours, theirs = _pair(ndim, kwargs, keep=0.3)
    x = torch.randn(x_shape)
    v = torch.randn(theirs(x).shape)
    exact = _grads(theirs, x, v)
    before = dict(plain.state_dict())
    reference = tnn.__dict__[type(plain).__name__](**kwargs)  # today's module, same weights
    reference.load_state_dict(before)
    assert all(torch.equal(a, b) for a, b in zip(_grads(plain, x, v), _grads(reference, x, v)))
    torch.testing.assert_close(_grads(plain, x, v)[2], exact[2], rtol=1e-10, atol=1e-10)
    ours.eval()
    torch.testing.assert_close(_grads(ours, x, v)[2], exact[2], rtol=1e-10, atol=1e-10)
    ours.train()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), exact[0], rtol=1e-10, atol=1e-10)
    assert "DropoutConv" in type(ours(x.requires_grad_()).grad_fn).__name__
    assert "DropoutConv" not in type(plain(x).grad_fn).__name__


def test_float32_and_padding_modes():
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").float()
    ours = tnn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", grad_keep=0.5).float()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 2, 6, 5, dtype=torch.float32, requires_grad=True)
    y = ours(x)
    torch.testing.assert_close(y, theirs(x))
    y.sum().backward()
    assert ours.weight.grad.dtype == torch.float32 and x.grad.shape == x.shape


def test_state_dict_round_trip_and_repr():
    theirs = torch.nn.Conv3d(2, 4, 2, groups=2)
    ours = tnn.Conv3d(2, 4, 2, groups=2, grad_keep=0.25, grad_sample="channel")
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    back = torch.nn.Conv3d(2, 4, 2, groups=2)
    back.load_state_dict(ours.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(),
                                                 theirs.state_dict().values()))
    assert "grad_keep=0.25, grad_sample='channel'" in repr(ours)
    assert "grad_keep" not in repr(tnn.Conv3d(2, 4, 2))


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.ConvTranspose2d(4, 2, 2)))


def test_tensor_dropout_swaps_convolutions_sharing_parameters_and_restore_undoes_it():
    net = _net()
    params = [id(p) for p in net.parameters()]
    x = torch.randn(2, 3, 5, 5)
    want = net(x)
    same = tnn.tensor_dropout(net, keep=0.5, sample="channel")
    assert same is net and [id(p) for p in net.parameters()] == params
    assert type(net[0]) is tnn.Conv2d and type(net[2][0]) is tnn.Conv2d
    assert type(net[2][1]) is torch.nn.ConvTranspose2d  # transposed convolutions stay
    assert net[0].grad_keep == 0.5 and net[2][0].grad_sample == "channel"
    torch.testing.assert_close(net(x), want, rtol=1e-10, atol=1e-10)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    net(x).sum().backward()
    optimizer.step()  # the shared Parameters move
    tnn.restore(net)
    assert type(net[0]) is torch.nn.Conv2d and type(net[2][0]) is torch.nn.Conv2d
    assert [id(p) for p in net.parameters()] == params
    assert not hasattr(net[0], "grad_keep")


def test_tensor_dropout_on_a_convolution_and_on_tndiag_modules():
    conv = torch.nn.Conv1d(2, 2, 3)
    swapped = tnn.tensor_dropout(conv, keep=0.3)
    assert type(swapped) is tnn.Conv1d and swapped.weight is conv.weight
    mine = torch.nn.Sequential(tnn.Conv2d(2, 2, 3))
    tnn.tensor_dropout(mine, keep=0.2)
    assert mine[0].grad_keep == 0.2
    tnn.restore(mine)
    assert type(mine[0]) is tnn.Conv2d and mine[0].grad_keep == 1.0
    tnn.tensor_dropout(mine, keep=1.0)  # keep=1.0: plain (exact) modules
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    assert "DropoutConv" not in type(mine(x).grad_fn).__name__


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(grad_keep=0.0), "grad_keep must be a probability in (0, 1]"),
    (dict(grad_keep=1.5), "grad_keep must be a probability in (0, 1]"),
    (dict(grad_sample="crs"), "sample must be one of ['spatial', 'channel']"),
])
def test_bad_module_arguments(kwargs, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        tnn.Conv2d(2, 2, 3, **kwargs)
    assert fragment in str(info.value)
    with pytest.raises(InvalidArgumentError):
        tnn.tensor_dropout(torch.nn.Conv2d(2, 2, 3), keep=kwargs.get("grad_keep", 0.5),
                           sample=kwargs.get("grad_sample", "spatial"))


@pytest.mark.parametrize("switch", [tnn.tensor_dropout, tnn.restore])
def test_a_non_module_model_is_a_type_error(switch):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        switch("model")


def test_spatial_sampling_on_a_size_one_input_raises_at_forward():
    conv = tnn.Conv2d(2, 2, (1, 3), grad_keep=0.5)
    with pytest.raises(InvalidArgumentError, match="spatial size > 1"):
        conv(torch.randn(2, 2, 1, 6, requires_grad=True))
