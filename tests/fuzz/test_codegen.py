"""Fuzzing ``compile`` and compiled programs: every outcome is a correct value, a
``TndiagError`` naming the culprit, or a ``TypeError`` for a non-tensor — never another
exception, and never a slow call (each call is timed).

Diagrams are random (transposed) convolutions, N = 1, 2, 3, with stride, padding (ints,
asymmetric pairs, ``'same'``), dilation and groups; correct calls are checked against torch in
float64.
"""

import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tndiag import TndiagError, compile, ops
from tndiag.codegen.bounded import MemoryLimitWarning
from tndiag.codegen.lowering import STRUCTURED

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Seconds one compile or program call may take: the diagrams are small and a call takes
#: milliseconds, but a cold compile on a machine shared by other jobs once took 5 s; the guard
#: is there to catch hangs and runaway work.
CALL_LIMIT = 30.0


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        assert time.perf_counter() - start < CALL_LIMIT, f"{fn} took too long"


@st.composite
def convolutions(draw):
    """``(diagram, torch reference taking (x, w))`` of a random (transposed) convolution."""
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    transposed = draw(st.booleans())
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    size = [draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 5)) for k, d in zip(kernel, dilation)]
    x_shape = (draw(st.integers(1, 2)), c_in, *size)
    if transposed:
        pad = [draw(st.integers(0, d * (k - 1) // 2)) for k, d in zip(kernel, dilation)]
        out_pad = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
        w_shape = (c_in, c_out // groups, *kernel)
        graph = ops.conv_transpose(x_shape, w_shape, stride=stride, padding=pad,
                                   output_padding=out_pad, groups=groups, dilation=dilation)
        fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
        return graph, lambda x, w: fn(x, w, None, stride, pad, out_pad, groups, dilation)
    padding = draw(st.one_of(
        st.just("same") if all(s == 1 for s in stride) else st.just("valid"),
        st.lists(st.integers(0, 2), min_size=nd, max_size=nd),
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=nd, max_size=nd)))
    w_shape = (c_out, c_in // groups, *kernel)
    graph = ops.conv(x_shape, w_shape, stride=stride, padding=padding, dilation=dilation,
                     groups=groups)
    return graph, lambda x, w: _torch_conv(nd, x, w, stride, padding, dilation, groups)


def _torch_conv(nd, x, w, stride, padding, dilation, groups):
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    if isinstance(padding, list) and padding and isinstance(padding[0], tuple):
        x = F.pad(x, [p for pair in reversed(padding) for p in pair])
        padding = 0
    return fn(x, w, None, stride, padding, dilation, groups)


def _args(program):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(*s, generator=gen) for s in program.input_shapes]


@FUZZ
@given(convolutions(), st.sampled_from([None, (), *[(name,) for name in STRUCTURED]]),
       st.booleans())
def test_compiled_programs_match_torch(case, lowerings, bounded):
    graph, reference = case
    options = {"lowerings": lowerings}
    if bounded:
        full = _timed(compile, graph, **options)
        options["memory_limit"] = max(1, int(full.peak_memory) * 8 // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MemoryLimitWarning)
        program = _timed(compile, graph, **options)
        x, w = _args(program)
        got = _timed(program, x, w)
    torch.testing.assert_close(got, reference(x, w), rtol=1e-10, atol=1e-10)


_JUNK = st.one_of(st.none(), st.just([[1.0]]), st.just("X"), st.floats(-1, 1),
                  st.just(np.zeros((2, 2))), st.just(torch.zeros(1)),
                  st.just(torch.zeros(1, dtype=torch.int64)))


@FUZZ
@given(convolutions(), st.integers(0, 1), _JUNK, st.booleans())
def test_bad_program_arguments_raise_a_clean_error(case, which, junk, by_name):
    graph, _ = case
    program = _timed(compile, graph)
    args = _args(program)
    args[which] = junk
    name = program.inputs[which]
    call = (lambda: program(**dict(zip(program.inputs, args)))) if by_name else (
        lambda: program(*args))
    with pytest.raises((TypeError, TndiagError)) as info:
        _timed(call)
    assert repr(name) in str(info.value)
    if not isinstance(junk, torch.Tensor):
        assert info.type is TypeError


@FUZZ
@given(convolutions(), st.integers(0, 1), st.sampled_from([torch.float32, torch.int64]))
def test_wrong_shapes_and_mixed_dtypes_are_named(case, which, dtype):
    graph, _ = case
    program = _timed(compile, graph)
    args = _args(program)
    other = args[1 - which]
    args[which] = args[which].to(dtype) if dtype != other.dtype else args[which][..., :0]
    with pytest.raises(TndiagError, match=repr(program.inputs[which])):
        _timed(program, *args)


_SIZE_JUNK = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True),
                       st.integers(max_value=-1), st.text(max_size=3), st.just([2]))


@FUZZ
@given(st.integers(1, 3), st.sampled_from(["N", "C_in", "C_out", "I1", "K1"]), _SIZE_JUNK)
def test_compile_sizes_reject_non_sizes_naming_them(nd, name, junk):
    sizes = {"N": 2, "C_in": 2, "C_out": 3, **{f"I{d}": 5 for d in range(1, nd + 1)},
             **{f"K{d}": 2 for d in range(1, nd + 1)}}
    sizes[name] = junk
    with pytest.raises(TndiagError, match=repr(name)):
        _timed(compile, ops.conv(ndim=nd), sizes=sizes)


@FUZZ
@given(convolutions(), st.one_of(st.none(), st.booleans(), st.floats(), st.integers(max_value=0),
                                 st.text(max_size=3)),
       st.one_of(st.text(max_size=8), st.lists(st.text(max_size=8), max_size=2)))
def test_bad_compile_options_raise_invalid_argument(case, limit, lowering_names):
    graph, _ = case
    if limit is not None:
        with pytest.raises(TndiagError, match="memory_limit"):
            _timed(compile, graph, memory_limit=limit)
    names = [lowering_names] if isinstance(lowering_names, str) else lowering_names
    if all(n in STRUCTURED for n in names):
        assert _timed(compile, graph, lowerings=names) is not None
    else:
        with pytest.raises(TndiagError, match="lowerings"):
            _timed(compile, graph, lowerings=names)
