"""The torch backend: binding by name/position, errors, runners, dtypes."""

import pytest
import torch
import torch.nn.functional as F

from tndiag import CompileError, ShapeError, UnknownNameError, compile, ops
from tndiag.backends.torch import MATERIALIZERS, dense_reduced
from tndiag.backends.torch_native import PREPARERS, reduced_matrix
from tndiag.codegen import plan
from tndiag.codegen.lowering import LOWERINGS


def test_call_by_name_and_position_agree():
    x, w = torch.randn(2, 3, 8), torch.randn(4, 3, 3)
    prog = compile(ops.conv(x.shape, w.shape))
    torch.testing.assert_close(prog(x, w), prog(W=w, X=x))
    torch.testing.assert_close(prog(x, W=w), F.conv1d(x, w))


def test_binding_errors_name_the_problem():
    x, w = torch.randn(2, 3, 8), torch.randn(4, 3, 3)
    prog = compile(ops.conv(x.shape, w.shape))
    with pytest.raises(ShapeError, match="missing input"):
        prog(x)
    with pytest.raises(UnknownNameError, match="'Z'"):
        prog(x, w, Z=x)
    with pytest.raises(ShapeError, match="shape"):
        prog(torch.randn(2, 3, 9), w)
    with pytest.raises(ShapeError, match="given twice"):
        prog(x, w, X=x)


def test_symbolic_plan_prints_but_does_not_run():
    p = plan(ops.conv(ndim=2))
    assert "conv2d" in str(p)
    with pytest.raises(CompileError, match="symbolic"):
        p(torch.randn(1), torch.randn(1))


@pytest.mark.parametrize("I,O,K,S,P,D", [(9, 7, 3, 1, 0, 1), (9, 5, 3, 2, 1, 1),
                                         (10, 4, 3, 3, 2, 2), (5, 5, 1, 1, 0, 1)])
def test_reduced_matrix_equals_the_summed_dense_pattern(I, O, K, S, P, D):
    torch.testing.assert_close(reduced_matrix(I, O, K, S, P, D),
                               dense_reduced(I, O, K, S, P, D))


def test_every_operand_lowering_and_step_kind_has_a_runner():
    runnable = set(MATERIALIZERS) | {"input", "native", "view"}
    assert all(callable(fn) for fn in LOWERINGS.values())
    assert {"dense-pattern", "reduced-matrix", "dense-reduced", "fill", "dense-delta"} <= runnable
    assert set(PREPARERS) == {"einsum", "native", "view", "gram", "window-sum", "broadcast",
                              "scatter"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_runs_in_the_inputs_dtype(dtype):
    x, w = torch.randn(2, 4, 6, 6, dtype=dtype), torch.randn(4, 2, 3, 3, dtype=dtype)
    for lowerings in (None, ()):
        y = compile(ops.conv(x.shape, w.shape, groups=2), lowerings=lowerings)(x, w)
        assert y.dtype == dtype
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(y, F.conv2d(x, w, groups=2), rtol=tol, atol=tol)


def test_sum_program_adds_the_bias_term():
    x, w, b = torch.randn(2, 3, 8), torch.randn(4, 3, 3), torch.randn(4)
    prog = compile(ops.conv(x.shape, w.shape, bias=True))
    torch.testing.assert_close(prog(X=x, W=w, B=b), F.conv1d(x, w, b))
