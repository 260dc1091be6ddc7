"""The torch backend: binding by name/position, errors, runners, dtypes."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import tndiag
from tndiag import CompileError, InvalidArgumentError, ShapeError, UnknownNameError, compile, ops
from tndiag.backends.torch import MATERIALIZERS, dense_reduced, run, run_checked
from tndiag.backends.torch_native import PREPARERS, reduced_matrix
from tndiag.codegen import plan
from tndiag.codegen.lowering import LOWERINGS
from tndiag.codegen.program import StepKind
from tndiag.ir import Graph, Index, constant


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
    assert {"dense-pattern", "reduced-matrix", "fill", "dense-delta"} <= runnable
    assert set(PREPARERS) == set(StepKind)


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


def _constant_program():
    n = Index("n", 3)
    return compile(Graph.of([constant("C", 2.0, [n])], [n]))


def test_a_cached_constant_result_is_never_handed_out():
    p = _constant_program()
    first = p()
    first.add_(7)
    torch.testing.assert_close(p(), torch.full((3,), 2.0))


@pytest.mark.parametrize("build", [
    lambda: ops.conv((2, 3, 8), (4, 3, 1)),  # 1x1: a reshape/matmul
    lambda: ops.unfold((2, 3, 8), 1),  # one tap: a view of the input
    lambda: ops.conv((2, 3, 8), (4, 3, 3)),
])
def test_no_result_aliases_an_input(build):
    prog = compile(build())
    args = [torch.randn(*s) for s in prog.input_shapes]
    saved = [a.clone() for a in args]
    out = prog(*args)
    out.add_(1.0)
    for a, s in zip(args, saved):
        assert torch.equal(a, s)
        assert out.data_ptr() != a.data_ptr()


@pytest.mark.parametrize("bad", [None, [[1.0]], "x", 3.0])
def test_a_non_tensor_input_is_a_type_error_naming_it(bad):
    prog = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    with pytest.raises(TypeError, match="'W'"):
        prog(torch.randn(2, 3, 8), bad)
    with pytest.raises(TypeError, match="'X'"):
        prog(X=bad, W=torch.randn(4, 3, 3))


def test_a_numpy_input_is_a_type_error():
    np = pytest.importorskip("numpy")
    prog = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    with pytest.raises(TypeError, match="'X'.*ndarray"):
        prog(np.zeros((2, 3, 8)), torch.randn(4, 3, 3))


def test_wrong_shapes_and_mixed_dtypes_name_the_operand():
    prog = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    with pytest.raises(ShapeError, match="'W'"):
        prog(torch.randn(2, 3, 8), torch.randn(4, 3, 2))
    with pytest.raises(InvalidArgumentError, match="'W'.*float32"):
        prog(torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float32))


@pytest.mark.parametrize("bad", [None, True, 2.5, -3, "4"])
def test_compile_sizes_must_be_non_negative_ints(bad):
    with pytest.raises(InvalidArgumentError, match="sizes\\['N'\\]"):
        compile(ops.conv(ndim=1), sizes={"N": bad, "C_in": 2, "C_out": 2, "I1": 5, "K1": 3})


def test_compile_rejects_a_non_diagram_and_bad_sizes_container():
    with pytest.raises(InvalidArgumentError, match="diagram"):
        compile("Y = X")
    with pytest.raises(InvalidArgumentError, match="sizes must be a mapping"):
        compile(ops.conv(ndim=1), sizes=[("N", 2)])


def test_the_backend_is_found_by_name():
    from tndiag.codegen.program import BACKENDS, backend
    from tndiag.errors import UnknownNameError

    assert set(BACKENDS) == {"torch"} and backend("torch") is run
    with pytest.raises(UnknownNameError, match="jax"):
        backend("jax")


def test_programs_hold_no_tensors_closures_or_graphs():
    import dataclasses

    from tndiag.codegen.program import SlicedProgram
    from tndiag.ir import Graph as G

    graph = ops.kfc((64, 2, 10), 3)
    full = compile(graph)
    for prog in (full, compile(graph, memory_limit=int(full.peak_memory) * 2),
                 compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True))):
        stack = [prog]
        while stack:
            obj = stack.pop()
            assert not isinstance(obj, (torch.Tensor, G, dict)) and not callable(obj) or \
                dataclasses.is_dataclass(obj), type(obj)
            if dataclasses.is_dataclass(obj):
                stack += [getattr(obj, f.name) for f in dataclasses.fields(obj)]
            elif isinstance(obj, tuple):
                stack += list(obj)
        hash(prog)
    assert isinstance(compile(graph, memory_limit=int(full.peak_memory) * 2), SlicedProgram)


@given(st.permutations("abcd"), st.integers(0, 3),
       st.sampled_from([torch.float64, torch.int32, torch.complex128]))
def test_one_operand_einsum_steps_match_torch_einsum(order, summed, dtype):
    """A one-operand einsum step (sum, then permute) equals torch.einsum, dtype included."""
    from tndiag.backends.torch_native import einsum_recipe
    from tndiag.codegen.program import Step

    out = "".join(order[summed:])
    kernel, recipe = einsum_recipe(Step((0,), "abcd->" + out))
    t = (torch.arange(120) % 7 - 3).view(2, 3, 4, 5).to(dtype)
    got, want = kernel(recipe, [t]), torch.einsum("abcd->" + out, t)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_single_step_programs_take_inputs_in_any_order_and_reshaped():
    """The direct runner of one-step programs: positional inputs reordered for the step,
    consumed patterns as None, an input reshaped to its planned shape (a fold's columns)."""
    x = torch.randn(2, 18, 42, dtype=torch.float64)
    prog = compile(ops.fold(tuple(x.shape), (6, 7), 3, padding=1))
    torch.testing.assert_close(run(prog, x), F.fold(x, (6, 7), 3, padding=1))
    v, w = torch.randn(2, 4, 5, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
    prog = compile(tndiag.vjp(ops.conv((2, 3, 7), (4, 3, 3)), wrt="X", vector="V"))
    args = {"V": v, "W": w}
    got = run_checked(prog, *(args[n] for n in prog.inputs))
    torch.testing.assert_close(got, torch.nn.grad.conv1d_input((2, 3, 7), w, v))
