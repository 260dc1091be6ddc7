"""Runtime kernels of the torch backend against torch's own reductions and products.

Oracles: ``Tensor.sum`` for :func:`~tndiag.backends.kernels.outer_sum` (which hands large
contiguous CPU inputs to the channels-last pooling kernel) and ``torch.tensordot`` for
:func:`~tndiag.backends.kernels.axis_product` (in any layout), the residue-class sums of
:func:`~tndiag.backends.kernels.class_sums` (a GEMM over the last axis) against sums of
index-selected positions, in float64 and float32, values and gradients.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tndiag.backends import kernels

#: Inputs of over 8 MiB in float64, the summed dim, whether the pooling kernel takes it.
LARGE = [((4, 64, 96, 56), 2, True), ((8, 3, 224, 224), 2, True), ((512, 56, 56), 1, True),
         ((4, 64, 112, 2, 56), 2, True), ((8, 700, 200), 0, True), ((8, 64, 56, 56), 3, False),
         ((8, 32, 400, 17), 2, False)]


@pytest.mark.parametrize("shape, dim, streams", LARGE)
def test_outer_sum_equals_torch_sum_on_large_inputs(shape, dim, streams):
    x = torch.randn(shape, dtype=torch.float64)
    assert kernels._streams(x, dim) == streams
    got, want = kernels.outer_sum(x, dim), x.sum(dim)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want)


def test_outer_sum_streams_long_runs_of_large_contiguous_cpu_inputs():
    x = torch.randn(8, 128, 56, 56, dtype=torch.float32)  # 12.25 MiB, runs of 56
    assert kernels._streams(x, 2) and kernels._streams(x, 1)
    assert not kernels._streams(x, 3)  # the last dim: torch's inner reduction
    assert not kernels._streams(x.transpose(2, 3), 2)  # not contiguous
    assert kernels._streams(x[:2], 2)  # 3.1 MiB
    assert not kernels._streams(x[:1], 2)  # 1.5 MiB: under STREAM_MIN_BYTES
    assert not kernels._streams(torch.randn(8, 64, 400, 17), 2)  # runs under STREAM_MIN_RUN
    assert not kernels._streams(x.half(), 2)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data(),
       dtype=st.sampled_from([torch.float32, torch.float64]), transpose=st.booleans())
def test_outer_sum_hypothesis(shape, data, dtype, transpose):
    """Any shape, dim, dtype and layout; the thresholds lowered so that small drawn inputs
    take the pooling kernel too."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = torch.randn(shape, dtype=dtype)
    if transpose and len(shape) > 1:
        x = x.transpose(0, -1).contiguous().transpose(0, -1)
    old = kernels.STREAM_MIN_RUN, kernels.STREAM_MIN_BYTES
    kernels.STREAM_MIN_RUN, kernels.STREAM_MIN_BYTES = 1, 0
    try:
        got = kernels.outer_sum(x, dim)
    finally:
        kernels.STREAM_MIN_RUN, kernels.STREAM_MIN_BYTES = old
    torch.testing.assert_close(got, x.sum(dim))


def test_outer_sum_gradient_equals_torch_sum():
    x = torch.randn(4, 64, 96, 56, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 64, 56, dtype=torch.float64)
    assert kernels._streams(x, 2)
    (got,) = torch.autograd.grad(kernels.outer_sum(x, 2), x, g)
    (want,) = torch.autograd.grad(x.sum(2), x, g)
    torch.testing.assert_close(got, want)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), data=st.data(),
       dtype=st.sampled_from([torch.float32, torch.float64]), transpose=st.booleans())
def test_axis_product_equals_tensordot(shape, data, dtype, transpose):
    """Every axis (the last through ``(mᵀ xᵀ)ᵀ``), contiguous or transposed operands."""
    axis = data.draw(st.sampled_from([len(shape) - 1, data.draw(st.integers(0, len(shape) - 1))]))
    taps = data.draw(st.integers(1, 12))
    part = torch.randn(shape, dtype=dtype)
    if transpose:
        part = part.transpose(0, -1).contiguous().transpose(0, -1)
    m = torch.randint(-1, 2, (shape[axis], taps)).to(dtype)
    want = torch.tensordot(part, m, ([axis], [0])).movedim(-1, axis)
    torch.testing.assert_close(kernels.axis_product(part, m, axis), want)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data(),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_class_sums_equal_the_sum_of_each_residue_class(shape, data, dtype):
    axis = data.draw(st.sampled_from([len(shape) - 1, data.draw(st.integers(0, len(shape) - 1))]))
    stride = data.draw(st.integers(1, 5))
    x = torch.randn(shape, dtype=dtype)
    want = torch.stack([x.index_select(axis, torch.arange(shape[axis])[c::stride]).sum(axis)
                        for c in range(stride)], axis)
    torch.testing.assert_close(kernels.class_sums(x, axis, stride), want)


@pytest.mark.parametrize("axis", [0, 2])
def test_class_sums_gradient_over_the_last_axis_and_a_middle_one(axis):
    x = torch.randn(3, 4, 7, requires_grad=True)
    g = torch.randn(kernels.class_sums(x, axis, 2).shape)
    (got,) = torch.autograd.grad(kernels.class_sums(x, axis, 2), x, g)
    want = g.index_select(axis, torch.arange(x.shape[axis]) % 2)
    torch.testing.assert_close(got, want)
