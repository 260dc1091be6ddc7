"""Invalid input raises a tndiag error that names the argument and the expected value."""

import time

import pytest
import torch

import tndiag
from tndiag import functional as F
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
     r"stride must be an int or a sequence of ints, got 1.5"),
    ("stride-length", lambda: conv(x4(), w4(), stride=(1, 2, 3), groups=2),
     InvalidArgumentError, r"stride must be an int or a sequence of 2 ints"),
    ("stride-unhashable", lambda: conv(x4(), w4(), stride={}, groups=2), InvalidArgumentError,
     r"stride must be an int or a sequence of ints, got \{\}"),
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
     InvalidArgumentError, r"output_size must be an int or a sequence of ints, got None"),
    ("unfold-kernel-size-string", lambda: unfold(torch.randn(1, 1, 5, 5), "3"),
     InvalidArgumentError, r"kernel_size must be an int or a sequence of 2 ints, got '3'"),
    ("fold-output-size-zero", lambda: fold(torch.randn(1, 9, 36), (8, 0), 3),
     InvalidArgumentError, r"output_size must be positive, got \(8, 0\)"),
    ("unfold-kernel-rank", lambda: unfold_kernel(torch.randn(3, 3), (5,)), ShapeError,
     r"weight must have rank >= 3"),
    ("unfold-kernel-input-size", lambda: unfold_kernel(torch.randn(3, 3, 3), (5, 5)),
     InvalidArgumentError, r"input_size must be an int or a sequence of 1 ints, got \(5, 5\)"),
    ("builder-ndim", lambda: ops.conv(ndim=0), InvalidArgumentError,
     r"ndim must be an int between 1 and 16 .*, got 0"),
    ("builder-kernel-size", lambda: ops.unfold((1, 1, 5), (0,)), InvalidArgumentError,
     r"kernel_size must be positive"),
    ("program-input-shape", lambda: tndiag.compile(ops.conv((1, 1, 4), (1, 1, 2)))(
        torch.ones(1, 1, 5), torch.ones(1, 1, 2)), ShapeError,
     r"tensor 'X' has shape \[1, 1, 5\], expected \[1, 1, 4\]"),
]


def _program():
    return tndiag.compile(ops.conv((1, 1, 4), (1, 1, 2)))


CASES += [  # the bad arguments that used to escape as AttributeError, unpacking errors, ...
    ("kfac-reduce-short-shape", lambda: ops.kfac_reduce((2,), 3), InvalidArgumentError,
     r"input_shape must have at least 3 dimensions .* got \(2,\)"),
    ("ggn-gram-short-factor", lambda: ops.weight_ggn_gram((2, 3, 5), (1, 2), 3),
     InvalidArgumentError, r"grad_output_factor shape must have at least 4 dimensions"),
    ("per-sample-vjp-short", lambda: ops.per_sample_weight_vjp((2,), (1,), 3),
     InvalidArgumentError, r"input_shape must have at least 3 dimensions"),
    ("grad-output-kfac-scale", lambda: ops.grad_output_kfac((2, 3, 4), scale=float("nan")),
     InvalidArgumentError, r"scale must be a finite real number, got nan"),
    ("pass-on-string", lambda: tndiag.simplify("abc"), InvalidArgumentError,
     r"pass 'simplify' expects a diagram \(a Graph or Sum\), got str"),
    ("pass-on-none", lambda: tndiag.canonicalize(None), InvalidArgumentError,
     r"pass 'canonicalize' expects a diagram .* got NoneType"),
    ("pass-option-type", lambda: tndiag.differentiate(ops.conv(ndim=1), wrt=-1),
     InvalidArgumentError, r"option 'wrt' of pass 'differentiate' must be text"),
    ("pipeline-on-string", lambda: tndiag.run_pipeline("X", "simplify"), InvalidArgumentError,
     r"run_pipeline expects a diagram"),
    ("pipeline-bad-step", lambda: tndiag.run_pipeline(ops.conv(ndim=1), ["simplify", 3]),
     InvalidArgumentError, r"pipeline step must be pass text or a \(name, options\) pair, got 3"),
    ("pipeline-not-a-list", lambda: tndiag.run_pipeline(ops.conv(ndim=1), 3),
     InvalidArgumentError, r"pipeline must be text or a list of steps, got int"),
    ("export-name-none", lambda: tndiag.export(_program(), name=None), InvalidArgumentError,
     r"name must be a public Python identifier, got None"),
    ("shape-as-string", lambda: ops.conv("abcd"), InvalidArgumentError,
     r"input shape must be a sequence of sizes .* got 'abcd'"),
    ("shape-entry-not-identifier", lambda: ops.unfold((1, 1, ","), 2), InvalidArgumentError,
     r"input sizes must be positive ints or symbol names \(identifiers\), got ','"),
    ("shape-entry-float", lambda: ops.conv((1, 1, 2.5), (1, 1, 2)), InvalidArgumentError,
     r"input sizes must be positive ints or symbol names, got 2.5"),
    ("shape-huge", lambda: ops.conv((10**30, 1, 4), (1, 1, 2)), InvalidArgumentError,
     r"input sizes must be at most 2\*\*63 - 1"),
    ("stride-huge", lambda: conv(x4(), w4(), stride=10**30, groups=2), InvalidArgumentError,
     r"stride must be at most 2\*\*63 - 1 \(torch's int64\), got 10{30}"),
    ("padding-huge", lambda: conv(x4(), w4(), padding=10**30, groups=2), InvalidArgumentError,
     r"padding must be at most 2\*\*63 - 1"),
    ("builder-stride-huge", lambda: ops.conv((1, 1, 4), (1, 1, 2), stride=2**63),
     InvalidArgumentError, r"stride must be at most 2\*\*63 - 1"),
    ("groups-tensor", lambda: conv(x4(), w4(), groups=torch.tensor([1.0, 2.0])),
     InvalidArgumentError, r"groups must be an int or a sequence of ints, got tensor"),
    ("stride-float-tensor", lambda: conv(x4(), w4(), stride=torch.tensor(2.0), groups=2),
     InvalidArgumentError, r"stride must be an int or a sequence of ints, got tensor\(2."),
    ("transposed-flag-tensor", lambda: F.kfc(x4(), 3, transposed=torch.tensor([1.0, 0.0])),
     InvalidArgumentError, r"transposed must be True or False, got tensor"),
    ("bias-flag-tensor", lambda: ops.conv((1, 1, 4), (1, 1, 2), bias=torch.tensor([1.0])),
     InvalidArgumentError, r"bias must be True or False, got tensor"),
    ("ndim-2**31", lambda: ops.conv(ndim=2**31), InvalidArgumentError,
     r"ndim must be an int between 1 and 16 \(einsum has 52 subscript letters\), got 2147483648"),
    ("ndim-10**5", lambda: ops.unfold(kernel_size=3, ndim=10**5), InvalidArgumentError,
     r"ndim must be an int between 1 and 16"),
    ("ndim-from-shape", lambda: ops.conv((1, 1, *[2] * 17)), InvalidArgumentError,
     r"ndim must be an int between 1 and 16 .* got 17"),
    ("kfc-transposed-huge-stride", lambda: F.kfc(torch.randn(1, 1, 3), 2, transposed=True,
                                                 stride=2**31),
     InvalidArgumentError, r"kfc: the sizes and hyper-parameters need [0-9.]+ GiB of "
                           r"intermediates, more than this computer's memory"),
    ("kfc-integer-input", lambda: F.kfc(torch.ones(1, 2, 5, dtype=torch.long), 2),
     InvalidArgumentError, r"kfc: input must have a floating-point or complex dtype, got "
                           r"torch.int64"),
    ("kfac-reduce-integer-input", lambda: F.kfac_reduce(torch.ones(1, 2, 5, dtype=torch.int32),
                                                        2),
     InvalidArgumentError, r"kfac_reduce: input must have a floating-point"),
    ("ggn-integer-input", lambda: F.weight_ggn_diag(torch.ones(1, 2, 5, dtype=torch.int64),
                                                    torch.ones(1, 1, 3, 3, dtype=torch.int64), 3),
     InvalidArgumentError, r"weight_ggn_diag: input must have a floating-point"),
    ("kfc-empty-batch", lambda: F.kfc(torch.ones(0, 2, 5), 2), ShapeError,
     r"kfc: input has an empty batch \(shape \[0, 2, 5\]\)"),
    ("output-padding-not-transposed", lambda: F.kfc(x4(), 3, output_padding=1),
     InvalidArgumentError, r"output_padding=1 applies only with transposed=True"),
    ("builder-output-padding-not-transposed", lambda: ops.kfac_reduce((1, 1, 5), 3,
                                                                      output_padding=(1,)),
     InvalidArgumentError, r"output_padding=\(1,\) applies only with transposed=True"),
    ("conv-bool", lambda: conv(x4().bool(), w4().bool(), groups=2), InvalidArgumentError,
     r"conv does not support dtype torch.bool"),
    ("nn-stride-zero", lambda: tndiag.nn.Conv2d(4, 6, 3, stride=0), InvalidArgumentError,
     r"stride must be positive, got 0"),
    ("nn-kernel-rank", lambda: tndiag.nn.Conv2d(4, 6, (3, 3, 3)), InvalidArgumentError,
     r"kernel_size must be an int or a sequence of 2 ints, got \(3, 3, 3\)"),
    ("nn-channels-float", lambda: tndiag.nn.ConvTranspose1d(2.0, 2, 3), InvalidArgumentError,
     r"in_channels must be an int, got 2.0"),
    ("nn-groups-divide", lambda: tndiag.nn.Conv1d(4, 3, 3, groups=2), InvalidArgumentError,
     r"groups=2 must divide out_channels=3"),
    ("nn-torch-refusal", lambda: tndiag.nn.Conv1d(4, 4, 3, padding_mode="x"),
     InvalidArgumentError, r"Conv1d: padding_mode must be one of"),
    ("nn-output-size", lambda: tndiag.nn.ConvTranspose1d(2, 3, 3, stride=2)(
        torch.randn(1, 2, 5), output_size=[100]), InvalidArgumentError,
     r"output_size=\[100\]: requested an output size of \[100\]"),
    ("nn-unfold-kernel", lambda: tndiag.nn.Unfold(2.5), InvalidArgumentError,
     r"kernel_size must be an int or a sequence of ints, got 2.5"),
]


@pytest.mark.parametrize("thunk, error, message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_input_raises_precise_tndiag_error(thunk, error, message):
    with pytest.raises(error, match=message) as info:
        thunk()
    assert isinstance(info.value, tndiag.TndiagError)
    assert isinstance(info.value, ValueError)


NON_TENSORS = [  # (id, thunk, regex): a non-tensor where a tensor is required -> TypeError
    ("conv-weight-none", lambda: conv(x4(), None), r"weight must be a torch.Tensor, got NoneType"),
    ("conv-input-list", lambda: conv([1.0], w4()), r"input must be a torch.Tensor, got list"),
    ("conv-bias-number", lambda: conv(x4(), w4(), 1.0, groups=2),
     r"bias must be a torch.Tensor, got float"),
    ("input-vjp-grad-none", lambda: F.conv_input_vjp((2, 4, 8, 8), w4(), None, groups=2),
     r"grad_output must be a torch.Tensor, got NoneType"),
    ("weight-vjp-grad-none", lambda: F.conv_weight_vjp(x4(), (6, 2, 3, 3), None, groups=2),
     r"grad_output must be a torch.Tensor, got NoneType"),
    ("ggn-factor-array", lambda: F.weight_ggn_gram(x4(), [[1.0]], 3),
     r"grad_output_factor must be a torch.Tensor, got list"),
    ("unfold-kernel-weight-none", lambda: unfold_kernel(None, 5),
     r"weight must be a torch.Tensor, got NoneType"),
]


@pytest.mark.parametrize("thunk, message", [c[1:] for c in NON_TENSORS],
                         ids=[c[0] for c in NON_TENSORS])
def test_non_tensor_raises_type_error_naming_the_argument(thunk, message):
    with pytest.raises(TypeError, match=message):
        thunk()


@pytest.mark.parametrize("thunk", [lambda: ops.conv(ndim=2**31), lambda: ops.conv(ndim=10**5),
                                   lambda: F.kfc(torch.randn(1, 1, 3), 2, transposed=True,
                                                 stride=2**31)], ids=["2**31", "10**5", "kfc"])
def test_huge_arguments_fail_fast(thunk):
    start = time.perf_counter()
    with pytest.raises(InvalidArgumentError):
        thunk()
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("valid, invalid", [(2, 2.0), (1, True), (2, torch.tensor(2.0)),
                                            ((1, 2), (1.0, 2))])
def test_validation_does_not_depend_on_call_history(valid, invalid):
    """``2.0 == 2`` and ``True == 1`` for Python: a cache keyed on values would accept the
    invalid value once the valid one had been seen."""
    for _ in range(2):
        assert conv(x4(), w4(), stride=valid, groups=2).dim() == 4
        with pytest.raises(InvalidArgumentError, match="stride must be an int"):
            conv(x4(), w4(), stride=invalid, groups=2)
        assert unfold(x4(), 3, stride=valid).dim() == 3
        with pytest.raises(InvalidArgumentError, match="stride must be an int"):
            unfold(x4(), 3, stride=invalid)


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


@pytest.mark.parametrize("sizes", [3, "N=2", [("N", 2)], {"N": None}, {"N": 2.5}, {"N": -1}])
def test_export_sizes_that_are_not_a_mapping_of_ints_name_the_culprit(sizes):
    with pytest.raises(tndiag.InvalidArgumentError, match="sizes"):
        tndiag.export(tndiag.ops.conv(ndim=1), sizes=sizes)
