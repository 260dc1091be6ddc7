"""The diagrams behind tndiag.functional, compiled without torch's native kernels, match torch.

``tndiag.functional`` lets the compiler hand whole convolutions to torch's kernels when that
is cheaper; these tests force the einsum plans instead (dense patterns, and the structured
lowerings other than ``native``) so the diagrams themselves are checked against the oracles.
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
from hypothesis import given, settings

import tndiag
from tndiag import ops
from tndiag.codegen.lowering import STRUCTURED

# torch warns that 'same' with an even kernel pads a copy of the input; that is expected
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

#: the functional tests already draw 300 configurations per function; these add 100 per plan
FEWER = settings(max_examples=100)
PLANS = {"dense": (), "structured-no-native": tuple(s for s in STRUCTURED if s != "native")}


def _batched(cfg):
    shape = cfg["x_shape"]
    return shape if len(shape) == len(cfg["w_shape"]) else (1, *shape)


@pytest.mark.parametrize("plan", PLANS)
@FEWER
@given(cfg=conv_configs(max_ndim=2))
def test_conv_diagram_matches_torch(plan, cfg):
    x_shape = _batched(cfg)
    x, w = torch.randn(x_shape), torch.randn(cfg["w_shape"])
    b = torch.randn(cfg["bias"]) if cfg["bias"] else None
    hyper = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                 groups=cfg["groups"])
    program = tndiag.compile(ops.conv(x_shape, cfg["w_shape"], bias=b is not None, **hyper),
                             lowerings=PLANS[plan])
    ours = program(x, w) if b is None else program(x, w, b)
    assert_matches(ours, conv_reference(x, w, b, *hyper.values()))


@pytest.mark.parametrize("plan", PLANS)
@FEWER
@given(cfg=conv_configs(transposed=True, max_ndim=2))
def test_conv_transpose_diagram_matches_torch(plan, cfg):
    x_shape = _batched(cfg)
    x, w = torch.randn(x_shape), torch.randn(cfg["w_shape"])
    hyper = dict(stride=cfg["stride"], padding=cfg["padding"],
                 output_padding=cfg["output_padding"], groups=cfg["groups"],
                 dilation=cfg["dilation"])
    program = tndiag.compile(ops.conv_transpose(x_shape, cfg["w_shape"], **hyper),
                             lowerings=PLANS[plan])
    assert_matches(program(x, w), TORCH_CONV_T[len(x_shape) - 2](x, w, None, *hyper.values()))


@pytest.mark.parametrize("plan", PLANS)
@FEWER
@given(cfg=unfold_configs(max_ndim=2))
def test_unfold_and_fold_diagrams_match_reference(plan, cfg):
    x = torch.randn(cfg["x_shape"])
    K, D, S = cfg["kernel_size"], cfg["dilation"], cfg["stride"]
    unfold = tndiag.compile(ops.unfold(cfg["x_shape"], K, D, cfg["padding"], S),
                            lowerings=PLANS[plan])
    cols = unfold(x)
    assert_matches(cols, unfold_reference(x, K, D, cfg["pairs"], S))
    out = tuple(cfg["x_shape"][2:])
    fold = tndiag.compile(ops.fold(tuple(cols.shape), out, K, D, cfg["padding"], S),
                          lowerings=PLANS[plan])
    assert_matches(fold(cols), fold_reference(cols, out, K, D, cfg["pairs"], S))
