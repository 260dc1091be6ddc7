"""Invalid input raises a tndiag error that names the argument and the expected value."""

import pytest
import torch

import tndiag
from tndiag import ops
from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.functional import conv, conv_transpose, fold, unfold, unfold_kernel


def x4():
    return torch.randn(2, 4, 8, 8)


def w4():
    return torch.randn(6, 2, 3, 3)


def wt4():
    return torch.randn(4, 3, 3, 3)


CASES = [  # (id, thunk, error class, regex the message must match)
    ("stride-zero", lambda: conv(x4(), w4(), stride=0, groups=2), InvalidArgumentError,
     r"stride must be positive, got 0"),
    ("stride-negative-tuple", lambda: conv(x4(), w4(), stride=(1, -1), groups=2),
     InvalidArgumentError, r"stride must be positive, got \(1, -1\)"),
    ("stride-float", lambda: conv(x4(), w4(), stride=1.5, groups=2), InvalidArgumentError,
     r"stride must be an int or a sequence of 2 ints, got 1.5"),
    ("stride-length", lambda: conv(x4(), w4(), stride=(1, 2, 3), groups=2),
     InvalidArgumentError, r"stride must be an int or a sequence of 2 ints"),
    ("stride-unhashable", lambda: conv(x4(), w4(), stride={}, groups=2), InvalidArgumentError,
     r"stride must be an int or a tuple of ints"),
    ("dilation-zero", lambda: conv(x4(), w4(), dilation=0, groups=2), InvalidArgumentError,
     r"dilation must be positive, got 0"),
    ("padding-negative", lambda: conv(x4(), w4(), padding=-1, groups=2), InvalidArgumentError,
     r"padding must be non-negative, got -1"),
    ("padding-negative-pair", lambda: conv(x4(), w4(), padding=((0, -1), (1, 1)), groups=2),
     InvalidArgumentError, r"padding must be non-negative"),
    ("padding-unknown-string", lambda: conv(x4(), w4(), padding="full", groups=2),
     InvalidArgumentError, r"padding must be an int, a tuple, 'same' or 'valid', got 'full'"),
    ("same-with-stride", lambda: conv(x4(), w4(), padding="same", stride=2, groups=2),
     InvalidArgumentError, r"padding='same' requires stride 1 .* got stride \(2, 2\)"),
    ("groups-zero", lambda: conv(x4(), w4(), groups=0), InvalidArgumentError,
     r"groups must be a positive int, got 0"),
    ("groups-not-dividing-input", lambda: conv(torch.randn(2, 3, 8, 8),
                                               torch.randn(6, 1, 3, 3), groups=2),
     InvalidArgumentError, r"groups=2 must divide input channels=3"),
    ("groups-not-dividing-output", lambda: conv(x4(), torch.randn(5, 2, 3, 3), groups=2),
     InvalidArgumentError, r"groups=2 must divide output channels \(weight.shape\[0\]\)=5"),
    ("kernel-larger-than-padded-input", lambda: conv(x4(), torch.randn(6, 2, 3, 11), groups=2,
                                                     padding=1),
     InvalidArgumentError, r"kernel size 11 .* larger than the padded input size 8 \+ 1 \+ 1"),
    ("weight-rank", lambda: conv(x4(), torch.randn(6, 2)), ShapeError,
     r"weight must have rank >= 3 .* got shape \(6, 2\)"),
    ("input-rank", lambda: conv(torch.randn(8, 8), w4()), ShapeError,
     r"expected input of rank 4 \(batched\) or 3 \(unbatched\) .* shape \(8, 8\)"),
    ("channel-mismatch", lambda: conv(x4(), torch.randn(6, 3, 3, 3)), InvalidArgumentError,
     r"expects 3 input channels \(weight.shape\[1\] \* groups\), but the input has 4"),
    ("bias-shape", lambda: conv(x4(), w4(), torch.randn(5), groups=2), ShapeError,
     r"bias must have shape \(6,\) .* got shape \(5,\)"),
    ("dtype-mismatch", lambda: conv(x4().float(), w4(), groups=2), InvalidArgumentError,
     r"weight has dtype torch.float64 but input has dtype torch.float32"),
    ("bias-dtype-mismatch", lambda: conv(x4(), w4(), torch.randn(6).float(), groups=2),
     InvalidArgumentError, r"bias has dtype torch.float32"),
    ("device-mismatch", lambda: conv(x4().to("meta"), w4(), groups=2), InvalidArgumentError,
     r"weight is on device cpu but input is on meta; expected weight.device == input.device"),
    ("input-not-tensor", lambda: conv([1.0], w4()), InvalidArgumentError,
     r"input must be a torch.Tensor, got list"),
    ("output-padding-stride", lambda: conv_transpose(x4(), wt4(), stride=2, output_padding=2),
     InvalidArgumentError, r"output_padding must be smaller than either stride or dilation; "
                           r"got output_padding=2, stride=2, dilation=1"),
    ("output-padding-dilation", lambda: conv_transpose(x4(), wt4(), dilation=2,
                                                       output_padding=(0, 2)),
     InvalidArgumentError, r"output_padding=2, stride=1, dilation=2 in spatial dimension 1"),
    ("output-padding-negative", lambda: conv_transpose(x4(), wt4(), output_padding=-1),
     InvalidArgumentError, r"output_padding must be >= 0, got -1"),
    ("transposed-channel-mismatch", lambda: conv_transpose(x4(), torch.randn(3, 3, 3, 3)),
     InvalidArgumentError, r"expects 3 input channels \(weight.shape\[0\]\), but the input has 4"),
    ("transposed-same", lambda: conv_transpose(x4(), wt4(), padding="same"),
     InvalidArgumentError, r"padding for a transposed convolution must be an int or a tuple"),
    ("transposed-bias-shape", lambda: conv_transpose(x4(), wt4(), torch.randn(4)), ShapeError,
     r"bias must have shape \(3,\)"),
    ("transposed-too-much-padding", lambda: conv_transpose(torch.randn(1, 4, 1, 1), wt4(),
                                                           padding=3),
     InvalidArgumentError, r"padding \(3, 3\) is too large for input size 1"),
    ("unfold-rank", lambda: unfold(torch.randn(8), 3), ShapeError,
     r"expected input of rank >= 3"),
    ("unfold-rank-for-kernel", lambda: unfold(torch.randn(8, 3, 3, 3, 3), (3, 3)), ShapeError,
     r"expected input of rank 4 \(batched\) or 3 \(unbatched\) for 2 spatial dimensions"),
    ("unfold-kernel-too-large", lambda: unfold(torch.randn(1, 1, 3, 3), 4),
     InvalidArgumentError, r"kernel size 4 .* larger than the padded input size 3"),
    ("fold-channels", lambda: fold(torch.randn(1, 10, 36), 8, 3), InvalidArgumentError,
     r"input.shape\[1\]=10 to be divisible by the product of kernel_size \(3, 3\) = 9"),
    ("fold-blocks", lambda: fold(torch.randn(1, 9, 35), 8, 3), InvalidArgumentError,
     r"input.shape\[2\]=35 to equal the number of sliding blocks 36"),
    ("fold-rank", lambda: fold(torch.randn(1, 1, 9, 36), 8, 3), ShapeError,
     r"fold: expected input of rank 3"),
    ("fold-no-output-size", lambda: fold(torch.randn(1, 9, 36), None, 3),
     InvalidArgumentError, r"output_size must be an int or a sequence of 2 ints, got None"),
    ("unfold-kernel-size-string", lambda: unfold(torch.randn(1, 1, 5, 5), "3"),
     InvalidArgumentError, r"kernel_size must be an int or a sequence of 2 ints, got '3'"),
    ("fold-output-size-zero", lambda: fold(torch.randn(1, 9, 36), (8, 0), 3),
     InvalidArgumentError, r"output_size must be positive, got \(8, 0\)"),
    ("unfold-kernel-rank", lambda: unfold_kernel(torch.randn(3, 3), (5,)), ShapeError,
     r"weight must have rank >= 3"),
    ("unfold-kernel-input-size", lambda: unfold_kernel(torch.randn(3, 3, 3), (5, 5)),
     InvalidArgumentError, r"input_size must be an int or a sequence of 1 ints, got \(5, 5\)"),
    ("builder-ndim", lambda: ops.conv(ndim=0), InvalidArgumentError,
     r"ndim must be a positive int, got 0"),
    ("builder-kernel-size", lambda: ops.unfold((1, 1, 5), (0,)), InvalidArgumentError,
     r"kernel_size must be positive"),
    ("program-input-shape", lambda: tndiag.compile(ops.conv((1, 1, 4), (1, 1, 2)))(
        torch.ones(1, 1, 5), torch.ones(1, 1, 2)), ShapeError,
     r"tensor 'X' has shape \[1, 1, 5\], expected \[1, 1, 4\]"),
]


@pytest.mark.parametrize("thunk, error, message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_input_raises_precise_tndiag_error(thunk, error, message):
    with pytest.raises(error, match=message) as info:
        thunk()
    assert isinstance(info.value, tndiag.TndiagError)
    assert isinstance(info.value, ValueError)


def test_error_hierarchy():
    assert issubclass(tndiag.InvalidArgumentError, tndiag.TndiagError)
    assert issubclass(tndiag.InvalidArgumentError, ValueError)
    assert issubclass(tndiag.ShapeError, tndiag.TndiagError)
    assert issubclass(tndiag.VerifyError, tndiag.TndiagError)
    assert issubclass(tndiag.UnknownNameError, LookupError)


def test_failed_call_is_not_cached_and_valid_call_still_works():
    with pytest.raises(InvalidArgumentError):
        conv(x4(), w4(), stride=0, groups=2)
    assert conv(x4(), w4(), stride=1, groups=2).shape == (2, 6, 6, 6)
