"""Memory-bounded evaluation: sliced chunks match the unlimited result (float64)."""

import pytest
import torch

from tndiag import CompileError, InvalidArgumentError, compile, ops
from tndiag.bench import diagrams as bd
from tndiag.codegen.program import SlicedProgram


def _layer(batch, groups=1, padding=1, stride=1):
    return bd.layer_from_json(dict(net="t", name="l", ndim=2, batch=batch, c_in=4, c_out=4,
                                   input=[7, 6], kernel=[3, 2], stride=[stride, stride],
                                   padding=[padding, padding], dilation=[1, 1],
                                   groups=groups))


@pytest.mark.parametrize("factor", ["kfc", "kfac_reduce"])
@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_memory_limited_factor_matches_unlimited(factor, groups, stride):
    layer = _layer(batch=13, groups=groups, stride=stride)
    graph = getattr(bd, factor)(layer)
    full = compile(graph)
    small = compile(getattr(bd, factor)(_layer(batch=4, groups=groups, stride=stride)))
    limit = small.peak_memory * 8  # float64 bytes of a batch of 4
    assert full.peak_memory * 8 > limit  # the whole batch would not fit
    limited = compile(graph, memory_limit=limit)
    assert isinstance(limited, SlicedProgram) and limited.leg == "n"
    parts = limited.parts(8)
    assert len(parts) >= 3 and parts[-1][1] == 13
    assert all(p.peak_memory * 8 <= limit for _, _, p in parts)
    x = torch.randn(layer.x_shape)
    torch.testing.assert_close(limited(x), full(x), rtol=1e-10, atol=1e-10)
    assert "memory-bounded" in str(limited)


def test_open_sliced_leg_is_concatenated():
    x, w = torch.randn(9, 3, 10), torch.randn(4, 3, 3)
    graph = ops.conv(x.shape, w.shape, padding=1)
    full = compile(graph)
    limited = compile(graph, memory_limit=full.peak_memory * 8 // 4)
    assert limited.out_axis == 0 and len(limited.parts(8)) >= 4
    torch.testing.assert_close(limited(x, w), full(x, w), rtol=1e-12, atol=1e-12)


def test_bad_limits_raise():
    graph = ops.conv((2, 3, 10), (4, 3, 3))
    with pytest.raises(InvalidArgumentError, match="memory_limit"):
        compile(graph, memory_limit=0)
    with pytest.raises(CompileError, match="even one slice"):
        compile(graph, memory_limit=8)(torch.randn(2, 3, 10), torch.randn(4, 3, 3))
