"""Memory-bounded evaluation: chunks match the unlimited result (float64), and the limit never
raises the measured peak (torch profiler allocation events, as the benchmarks measure it)."""

import warnings

import pytest
import torch

from tndiag import CompileError, InvalidArgumentError, compile, ops
from tndiag.bench import diagrams as bd
from tndiag.bench.timing import peak_extra_bytes
from tndiag.codegen.bounded import MemoryLimitWarning
from tndiag.codegen.program import SlicedProgram, SumProgram
from tndiag.ir import Sum


def _layer(batch, groups=1, padding=1, stride=1):
    return bd.layer_from_json(dict(net="t", name="l", ndim=2, batch=batch, c_in=4, c_out=4,
                                   input=[7, 6], kernel=[3, 2], stride=[stride, stride],
                                   padding=[padding, padding], dilation=[1, 1],
                                   groups=groups))


def _inputs(program, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(*[int(v) for v in s], generator=gen, dtype=torch.float64)
            for n, s in zip(program.inputs, program.input_shapes)}


def _quiet_compile(diagram, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemoryLimitWarning)
        return compile(diagram, **kwargs)


@pytest.mark.parametrize("factor", ["kfc", "kfac_reduce"])
@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_memory_limited_factor_matches_unlimited(factor, groups, stride):
    layer = _layer(batch=64, groups=groups, stride=stride)
    graph = getattr(bd, factor)(layer)
    full = compile(graph)
    limit = int(full.peak_memory) * 8 // 2
    limited = _quiet_compile(graph, memory_limit=limit)
    assert isinstance(limited, SlicedProgram) and limited.leg == "n"
    plan = limited.plan_for(8)
    assert len(plan.chunks) >= 2 and plan.chunks[-1].stop == 64
    assert plan.peak < int(full.peak_memory)
    x = torch.randn(layer.x_shape, dtype=torch.float64)
    torch.testing.assert_close(limited(x), full(x), rtol=1e-10, atol=1e-10)
    assert "memory-bounded" in str(limited)


def test_open_sliced_leg_is_written_into_the_result():
    x, w = torch.randn(9, 3, 10, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
    graph = ops.conv(x.shape, w.shape, padding=1)
    full = compile(graph, lowerings=())  # the dense route: an [n, c, o, k] intermediate
    limited = compile(graph, lowerings=(), memory_limit=int(full.peak_memory) * 8 * 2 // 3)
    assert limited.out_axis == 0 and len(limited.parts(8)) >= 2
    torch.testing.assert_close(limited(x, w), full(x, w), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(limited(x, w), torch.nn.functional.conv1d(x, w, padding=1))


def test_bad_limits_raise_and_unmeetable_limits_warn():
    graph = ops.conv((2, 3, 10), (4, 3, 3))
    with pytest.raises(InvalidArgumentError, match="memory_limit"):
        compile(graph, memory_limit=0)
    for bad in (True, 2.5, "8", -5):
        with pytest.raises(InvalidArgumentError, match="memory_limit"):
            compile(graph, memory_limit=bad)
    with pytest.warns(MemoryLimitWarning, match="cannot be met.*peak is"):
        p = compile(graph, memory_limit=8)
    x, w = torch.randn(2, 3, 10), torch.randn(4, 3, 3)
    torch.testing.assert_close(p(x, w), torch.nn.functional.conv1d(x, w))


def test_symbolic_diagram_with_a_limit_needs_sizes():
    with pytest.raises(CompileError, match="symbolic"):
        compile(ops.conv(ndim=1), memory_limit=1000)


def test_memory_limited_bias_sum_matches_torch():
    """A ``Sum`` with a memory limit (the bias term) used to raise a TypeError."""
    x, w, b = torch.randn(9, 3, 10), torch.randn(4, 3, 3), torch.randn(4)
    graph = ops.conv(x.shape, w.shape, padding=1, bias=True)
    full = compile(graph)
    limited = _quiet_compile(graph, memory_limit=int(full.peak_memory) * 8 // 4)
    want = torch.nn.functional.conv1d(x, w, b, padding=1)
    torch.testing.assert_close(limited(X=x, W=w, B=b), want)
    torch.testing.assert_close(full(X=x, W=w, B=b), want)


def _curvature(kind):
    x_shape, s_shape, k = (16, 2, 10), (3, 16, 3, 8), 3
    if kind == "kfc":
        return ops.kfc(x_shape, k)
    if kind == "kfac_reduce":
        return ops.kfac_reduce(x_shape, k)
    if kind == "ggn_diag":
        return ops.weight_ggn_diag(x_shape, s_shape, k)
    return ops.weight_ggn_gram((8, 2, 10), (3, 8, 3, 8), k)


@pytest.mark.parametrize("as_sum", [False, True])
@pytest.mark.parametrize("kind", ["kfc", "kfac_reduce", "ggn_diag", "ggn_gram"])
def test_limit_never_raises_the_measured_peak(kind, as_sum):
    graph = _curvature(kind)
    diagram = Sum((graph, graph)) if as_sum else graph
    full = compile(diagram)
    limit = int(full.peak_memory) * 8 // 2
    limited = _quiet_compile(diagram, memory_limit=limit)
    if as_sum:
        assert isinstance(limited, SumProgram)
    args = _inputs(full)
    torch.testing.assert_close(limited(**args), full(**args), rtol=1e-10, atol=1e-10)
    peak_full = peak_extra_bytes(lambda: full(**args))
    peak_limited = peak_extra_bytes(lambda: limited(**args))
    assert peak_limited <= peak_full, (peak_limited, peak_full)


def test_limit_lowers_the_measured_peak_when_slicing_helps():
    graph = ops.kfc((64, 2, 10), 3)
    full = compile(graph)
    limited = compile(graph, memory_limit=int(full.peak_memory) * 8 // 2)
    args = _inputs(full)
    assert peak_extra_bytes(lambda: limited(**args)) < peak_extra_bytes(lambda: full(**args))
