"""Pointwise steps (1×1 kernel, stride 1, no padding, one group) and the ``gemm`` route.

The model prices torch's kernel below the per-sample GEMMs of the ``gemm`` route on such
steps (``NATIVE_POINTWISE_EFFICIENCY``), so ``"model"`` mode runs large pointwise forwards and
weight gradients as GEMMs. Oracles: torch's ``conv{1,2,3}d`` and autograd, in float64.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_routes import check_conv_routes

import tndiag
from tndiag import ops
from tndiag.codegen import cost

POINTWISE = {
    "1d": dict(transposed=False, x_shape=(3, 5, 70), w_shape=(4, 5, 1), stride=(1,),
               padding=0, dilation=(1,), groups=1),
    "2d": dict(transposed=False, x_shape=(2, 6, 9, 8), w_shape=(7, 6, 1, 1), stride=(1, 1),
               padding=0, dilation=(1, 1), groups=1),
    "2d-dilated-same": dict(transposed=False, x_shape=(2, 3, 12, 12), w_shape=(2, 3, 1, 1),
                            stride=(1, 1), padding="same", dilation=(3, 2), groups=1),
    "3d": dict(transposed=False, x_shape=(1, 4, 3, 5, 6), w_shape=(2, 4, 1, 1, 1),
               stride=(1, 1, 1), padding=0, dilation=(1, 1, 1), groups=1),
    # not pointwise for the model (groups, stride, transposed); still correct along gemm
    "2d-grouped": dict(transposed=False, x_shape=(2, 6, 9, 8), w_shape=(4, 3, 1, 1),
                       stride=(1, 1), padding=0, dilation=(1, 1), groups=2),
    "2d-strided": dict(transposed=False, x_shape=(2, 6, 9, 8), w_shape=(4, 6, 1, 1),
                       stride=(2, 3), padding=0, dilation=(1, 1), groups=1),
    "t2d": dict(transposed=True, x_shape=(2, 6, 5, 4), w_shape=(6, 3, 1, 1), stride=(1, 1),
                padding=0, dilation=(1, 1), groups=1, output_padding=(0, 0)),
}


@pytest.mark.parametrize("route", ["native", "gemm"])
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_routes_match_torch(name, route):
    assert check_conv_routes(POINTWISE[name], route)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 3), c=st.integers(1, 5), d=st.integers(1, 5),
       sizes=st.lists(st.integers(1, 9), min_size=1, max_size=3))
def test_pointwise_gemm_matches_torch_hypothesis(n, c, d, sizes):
    nd = len(sizes)
    case = dict(transposed=False, x_shape=(max(n, 1), c, *sizes), w_shape=(d, c, *[1] * nd),
                stride=(1,) * nd, padding=0, dilation=(1,) * nd, groups=1)
    assert check_conv_routes(case, "gemm")


def _route(diagram):
    (step,) = tndiag.compile(diagram).steps
    return step.route


@pytest.mark.parametrize("side,op", [(14, "conv"), (8, "conv"), (14, "weight")])
def test_model_runs_large_pointwise_steps_as_gemms(side, op):
    build = ops.conv if op == "conv" else ops.conv_weight_vjp
    assert _route(build((32, 64, side, side), (96, 64, 1, 1))) == "gemm"


@pytest.mark.parametrize("diagram", [
    ops.conv((32, 960, 7, 7), (320, 960, 1, 1)),  # 7×7 outputs: torch's kernel won (1.13–1.20×)
    ops.conv_weight_vjp((32, 192, 8, 8), (192, 192, 1, 1)),  # 8×8: gemm lost (1.08–1.14×)
    ops.conv_input_vjp((32, 64, 28, 28), (96, 64, 1, 1)),  # transposes: mixed, kept native
    ops.conv((32, 64, 28, 28), (96, 64, 1, 1), stride=2),  # strided: the view is copied
    ops.conv((32, 64, 28, 28), (96, 32, 1, 1), groups=2),
    ops.conv((1, 2, 4, 4), (3, 2, 1, 1)),  # tiny: the route's extra calls dominate
    ops.conv((32, 1024, 14, 14), (1024, 1024, 1, 1)),  # large weight: torch won (1.22×)
    ops.conv_weight_vjp((32, 1024, 14, 14), (2048, 1024, 1, 1)),  # torch won (1.53×)
    ops.conv((32, 64, 73, 73), (80, 64, 1, 1)),  # large plane: torch won at 2 threads (1.66×)
], ids=["7x7-forward", "8x8-weight", "input-vjp", "strided", "grouped", "tiny", "big-forward",
        "big-weight", "big-plane-forward"])
def test_model_keeps_torch_kernel_elsewhere(diagram):
    assert _route(diagram) == "native"


def test_pointwise_predicate():
    info = lambda d: tndiag.compile(d).steps[0].info  # noqa: E731
    assert cost.pointwise(info(ops.conv((2, 3, 5, 5), (4, 3, 1, 1))))
    assert cost.pointwise(info(ops.conv_weight_vjp((2, 3, 5), (4, 3, 1))))
    assert not cost.pointwise(info(ops.conv((2, 3, 5, 5), (4, 3, 1, 1), padding=1)))
    assert not cost.pointwise(info(ops.conv_input_vjp((2, 3, 5, 5), (4, 3, 1, 1))))
    assert not cost.pointwise(info(ops.conv((2, 3, 5, 5), (4, 3, 3, 1))))


def test_printed_program_shows_the_modelled_gemm_route():
    text = str(tndiag.compile(ops.conv((32, 64, 14, 14), (96, 64, 1, 1))))
    assert "route: gemm (chosen; routes native, gemm)" in text
    y = tndiag.compile(ops.conv((2, 3, 9, 9), (4, 3, 1, 1)), route="gemm")(
        x := torch.randn(2, 3, 9, 9, dtype=torch.float64),
        w := torch.randn(4, 3, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w))
