"""torch's input contract: empty batches, integer and bool dtypes, results that never alias.

Oracles: torch's own functions where torch computes the case; where torch has no kernel
(``unfold`` of int64, the transposed convolution of int32, integer VJPs), torch's float64
result of the same small integers, which is exact.
"""

import pytest
import torch
from conv_reference import (
    TORCH_CONV_T,
    assert_matches,
    conv_reference,
    fold_reference,
    unfold_reference,
)
from conv_strategies import conv_configs, unfold_configs
from hypothesis import given
from hypothesis import strategies as st

from tndiag import functional as F
from tndiag import nn

INTS = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]


def _empty(shape):
    """The batched version of ``shape`` with N = 0 (unbatched shapes gain the axis)."""
    return (0, *shape[1:])


def _torch_conv_t(x, w, b, c):
    return TORCH_CONV_T[w.dim() - 2](x, w, b, c["stride"], c["padding"], c["output_padding"],
                                     c["groups"], c["dilation"])


def _conv_args(c):
    return dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                groups=c["groups"])


def _check_empty_conv(c, transposed):
    shape = c["x_shape"] if len(c["x_shape"]) == len(c["w_shape"]) else (1, *c["x_shape"])
    x = torch.randn(_empty(shape), requires_grad=True)
    w = torch.randn(c["w_shape"], requires_grad=True)
    b = torch.randn(c["bias"]) if c["bias"] else None
    if transposed:
        ours = F.conv_transpose(x, w, b, c["stride"], c["padding"], c["output_padding"],
                                c["groups"], c["dilation"])
        ref = _torch_conv_t(x, w, b, c)
    else:
        ours, ref = F.conv(x, w, b, **_conv_args(c)), conv_reference(x, w, b, **_conv_args(c))
    assert_matches(ours, ref)
    (gw,) = torch.autograd.grad(ours.sum(), w, allow_unused=True)
    assert gw is not None and torch.equal(gw, torch.zeros_like(w))


GRID = [dict(x_shape=(2, 4, 7), w_shape=(6, 2, 3), bias=(6,), stride=2, padding=1, dilation=1,
             groups=2),
        dict(x_shape=(1, 3, 6, 5), w_shape=(4, 3, 2, 3), bias=None, stride=1, padding="same",
             dilation=(2, 1), groups=1),
        dict(x_shape=(1, 2, 4, 5, 3), w_shape=(2, 2, 2, 2, 1), bias=(2,), stride=(1, 2, 1),
             padding=((1, 0), (0, 1), (0, 0)), dilation=1, groups=1)]
GRID_T = [dict(x_shape=(2, 4, 5), w_shape=(4, 3, 3), bias=(6,), stride=2, padding=1,
               output_padding=1, dilation=1, groups=2),
          dict(x_shape=(1, 2, 3, 4), w_shape=(2, 1, 2, 3), bias=None, stride=(1, 2), padding=0,
               output_padding=(0, 1), dilation=(2, 1), groups=1)]


@pytest.mark.parametrize("case", GRID, ids=["1d-grouped", "2d-same", "3d-asymmetric"])
def test_empty_batch_conv_grid(case):
    _check_empty_conv(case, transposed=False)


@pytest.mark.parametrize("case", GRID_T, ids=["1d-grouped", "2d-dilated"])
def test_empty_batch_conv_transpose_grid(case):
    _check_empty_conv(case, transposed=True)


@given(c=conv_configs())
def test_empty_batch_conv_random(c):
    _check_empty_conv(c, transposed=False)


@given(c=conv_configs(transposed=True))
def test_empty_batch_conv_transpose_random(c):
    _check_empty_conv(c, transposed=True)


@given(c=unfold_configs())
def test_empty_batch_unfold_and_fold_random(c):
    x = torch.randn(_empty(c["x_shape"]))
    args = (c["kernel_size"], c["dilation"], c["padding"], c["stride"])
    cols = F.unfold(x, *args)
    assert_matches(cols, unfold_reference(x, c["kernel_size"], c["dilation"], c["pairs"],
                                          c["stride"]))
    back = F.fold(cols, c["x_shape"][2:], *args)
    assert_matches(back, fold_reference(cols, c["x_shape"][2:], c["kernel_size"],
                                        c["dilation"], c["pairs"], c["stride"]))


def test_empty_batch_matches_torch_for_2d_unfold_fold_and_vjps():
    x = torch.randn(0, 3, 6, 6)
    assert_matches(F.unfold(x, 3, padding=1), torch.nn.functional.unfold(x, 3, padding=1))
    cols = torch.randn(0, 27, 36)
    assert_matches(F.fold(cols, 6, 3, padding=1), torch.nn.functional.fold(cols, 6, 3, padding=1))
    w, v = torch.randn(4, 3, 3), torch.randn(0, 4, 3)
    assert_matches(F.conv_input_vjp((0, 3, 7), w, v, stride=2),
                   torch.nn.grad.conv1d_input((0, 3, 7), w, v, stride=2))
    assert_matches(F.conv_weight_vjp(torch.randn(0, 3, 7), (4, 3, 3), v, stride=2),
                   torch.nn.grad.conv1d_weight(torch.randn(0, 3, 7), (4, 3, 3), v, stride=2))


@pytest.mark.parametrize("name, args, kwargs, shape", [
    ("Conv2d", (4, 6, 3), dict(padding=1, groups=2), (0, 4, 5, 5)),
    ("Conv1d", (2, 3, 3), dict(padding=1, padding_mode="circular"), (0, 2, 6)),
    ("ConvTranspose3d", (2, 2, 2), dict(stride=2), (0, 2, 2, 3, 2)),
    ("Unfold", (2,), dict(stride=2), (0, 3, 4, 4)),
    ("Fold", (4, 2), dict(stride=2), (0, 12, 4)),
], ids=["Conv2d", "Conv1d-circular", "ConvTranspose3d", "Unfold", "Fold"])
def test_empty_batch_nn_modules(name, args, kwargs, shape):
    theirs, ours = getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(shape)
    assert_matches(ours(x), theirs(x))


def _ints(shape, dtype):
    low = 0 if dtype == torch.uint8 else -2
    return torch.randint(low, 3, shape).to(dtype)


@pytest.mark.parametrize("dtype", INTS, ids=str)
@pytest.mark.parametrize("case", GRID, ids=["1d-grouped", "2d-same", "3d-asymmetric"])
def test_integer_conv_matches_torch(dtype, case):
    x, w = _ints(case["x_shape"], dtype), _ints(case["w_shape"], dtype)
    b = _ints(case["bias"], dtype) if case["bias"] else None
    ours = F.conv(x, w, b, **_conv_args(case))
    ref = conv_reference(x.double(), w.double(), None if b is None else b.double(),
                         **_conv_args(case)).to(dtype)
    assert ours.dtype == dtype and torch.equal(ours, ref)
    if dtype == torch.int64 and case["groups"] == 1 and case["dilation"] == 1:
        assert torch.equal(ours, conv_reference(x, w, b, **_conv_args(case)))  # torch itself


@pytest.mark.parametrize("dtype", INTS, ids=str)
@given(c=conv_configs(transposed=True))
def test_integer_conv_transpose_matches_torch(dtype, c):
    x, w = _ints(c["x_shape"], dtype), _ints(c["w_shape"], dtype)
    ours = F.conv_transpose(x, w, None, c["stride"], c["padding"], c["output_padding"],
                            c["groups"], c["dilation"])
    assert ours.dtype == dtype
    assert torch.equal(ours, _torch_conv_t(x.double(), w.double(), None, c).to(dtype))
    if dtype == torch.int64:  # torch has an int64 kernel: the drop-in must accept it too
        assert torch.equal(ours, _torch_conv_t(x, w, None, c))


@given(c=conv_configs())
def test_integer_conv_random_matches_float64(c):
    x, w = _ints(c["x_shape"], torch.int64), _ints(c["w_shape"], torch.int64)
    ours = F.conv(x, w, None, **_conv_args(c))
    assert torch.equal(ours, conv_reference(x.double(), w.double(), None,
                                            **_conv_args(c)).long())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8], ids=str)
def test_integer_unfold_fold_and_vjps_match_float64(dtype):
    x = _ints((2, 3, 6, 5), dtype)
    assert torch.equal(F.unfold(x, 2, padding=1, stride=2),
                       torch.nn.functional.unfold(x.double(), 2, padding=1, stride=2).to(dtype))
    cols = _ints((2, 12, 12), dtype)
    assert torch.equal(F.fold(cols, (6, 5), 2, padding=1, stride=2),
                       torch.nn.functional.fold(cols.double(), (6, 5), 2, padding=1,
                                                stride=2).to(dtype))
    w, v = _ints((4, 3, 3), dtype), _ints((2, 4, 3), dtype)
    assert torch.equal(F.conv_input_vjp((2, 3, 7), w, v, stride=2),
                       torch.nn.grad.conv1d_input((2, 3, 7), w.double(), v.double(),
                                                  stride=2).to(dtype))
    x1 = _ints((2, 3, 7), dtype)
    assert torch.equal(F.conv_weight_vjp(x1, (4, 3, 3), v, stride=2),
                       torch.nn.grad.conv1d_weight(x1.double(), (4, 3, 3), v.double(),
                                                   stride=2).to(dtype))


def test_bool_unfold_and_fold_match_torch():
    x = torch.rand(2, 3, 6, 5) > 0.5
    assert torch.equal(F.unfold(x, 2, dilation=2, padding=1),
                       torch.nn.functional.unfold(x, 2, dilation=2, padding=1))
    cols = torch.rand(1, 4, 25) > 0.3
    ours = F.fold(cols, 6, 2)
    assert ours.dtype == torch.bool
    assert torch.equal(ours, torch.nn.functional.fold(cols, 6, 2))


def _assert_fresh(result, *inputs):
    for t in inputs:
        assert result.untyped_storage().data_ptr() != t.untyped_storage().data_ptr()
    before = [t.clone() for t in inputs]
    result.add_(1)
    for t, b in zip(inputs, before, strict=True):
        assert torch.equal(t, b)


@given(c=unfold_configs(), batched=st.booleans())
def test_one_tap_unfold_and_fold_never_alias_their_input(c, batched):
    ndim = len(c["kernel_size"])
    x = torch.randn(c["x_shape"] if batched else c["x_shape"][1:])
    cols = F.unfold(x, (1,) * ndim, stride=c["stride"])
    _assert_fresh(cols, x)
    if c["stride"] in (1, (1,) * ndim):
        _assert_fresh(F.fold(cols, x.shape[-ndim:], (1,) * ndim), cols)


@pytest.mark.parametrize("thunk", [
    lambda x: F.unfold(x, 1),
    lambda x: F.fold(x.flatten(2), x.shape[2:], 1),
    lambda x: F.conv(x, torch.ones(3, 3, 1, 1)),
    lambda x: F.conv_transpose(x, torch.ones(3, 3, 1, 1)),
], ids=["unfold", "fold", "conv-1x1", "conv-transpose-1x1"])
def test_results_never_alias_inputs(thunk):
    x = torch.randn(2, 3, 4, 4)
    _assert_fresh(thunk(x), x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64], ids=str)
@pytest.mark.parametrize("big", [2**31, 2**63 - 1], ids=["2**31", "2**63-1"])
def test_huge_strides_and_dilations_that_change_nothing_match_torch(dtype, big):
    """torch accepts any int64 stride; with one output (or one tap) it changes nothing."""
    x, w = _ints((2, 2, 5, 4), dtype), _ints((3, 2, 2, 1), dtype)
    assert torch.equal(F.conv(x, w, stride=(big, 1), dilation=(1, big)),
                       conv_reference(x, w, None, (big, 1), 0, (1, big), 1))
    y = x.double()
    assert torch.equal(F.unfold(y, (2, 1), stride=big, dilation=(1, big)),
                       torch.nn.functional.unfold(y, (2, 1), stride=big, dilation=(1, big)))
    assert torch.equal(nn.Unfold(2, stride=big)(y), torch.nn.Unfold(2, stride=big)(y))
