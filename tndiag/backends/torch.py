"""Runs a compiled :class:`~tndiag.codegen.Program` on torch tensors (any device, any dtype).

Programs are pure data; what the backend prepares for one (a runner per step, materialized
pattern and constant operands per device and dtype) lives in :data:`_PREPARED`, keyed by the
program's identity and dropped with the program. Results never alias an input or a cached
operand: a program whose last step is a view returns a copy.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from tndiag.backends.torch_gather import dense_sliced
from tndiag.backends.torch_native import PREPARERS, reduced_matrix
from tndiag.codegen.bounded import check_run
from tndiag.codegen.program import (
    AnyProgram,
    Operand,
    Program,
    SlicedProgram,
    SumProgram,
    sample_inputs,
)
from tndiag.errors import CompileError, InvalidArgumentError, ShapeError, UnknownNameError

__all__ = ["run", "MATERIALIZERS", "FROM_POSITIONS", "dense_pattern", "dense_reduced"]


def dense_pattern(I: int, O: int, K: int, stride: int, pad_left: int, dilation: int,
                  device=None, dtype=None) -> torch.Tensor:
    """The 0/1 index pattern ``Π[i, o, k] = [i == o·S + k·D − P_l]`` as a dense tensor.

    >>> dense_pattern(3, 3, 1, 1, 0, 1).squeeze(-1)
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """
    i = torch.arange(I, device=device).view(I, 1, 1)
    o = torch.arange(O, device=device).view(1, O, 1)
    k = torch.arange(K, device=device).view(1, 1, K)
    return (i == o * stride + k * dilation - pad_left).to(dtype or torch.get_default_dtype())


def dense_reduced(I: int, O: int, K: int, stride: int, pad_left: int, dilation: int,
                  device=None, dtype=None) -> torch.Tensor:
    """``Σ_o Π[i, o, k]``: how often input pixel ``i`` meets kernel tap ``k``."""
    return dense_pattern(I, O, K, stride, pad_left, dilation, device, dtype).sum(1)


def _pattern(op: Operand, device, dtype) -> torch.Tensor:
    p = op.tensor.pattern_params
    I, O, K = op.shape
    return dense_pattern(I, O, K, p.stride, p.pad_left, p.dilation, device, dtype)


def _out_size(t) -> int:
    """O of a pattern (its o leg) or of a reduced pattern (its ``out_size``)."""
    return int(t.out_size) if t.out_size is not None else int(t.indices[1].size)


def _reduced(op: Operand, device, dtype) -> torch.Tensor:
    t, p = op.tensor, op.tensor.pattern_params
    I, K = op.shape
    return dense_reduced(I, _out_size(t), K, p.stride, p.pad_left, p.dilation, device, dtype)


def _reduced_matrix(op: Operand, device, dtype) -> torch.Tensor:
    t, p = op.tensor, op.tensor.pattern_params
    I, K = op.shape
    return reduced_matrix(I, _out_size(t), K, p.stride, p.pad_left, p.dilation, device, dtype)


def _delta(op: Operand, device, dtype) -> torch.Tensor:
    n = op.shape[0]
    out = torch.zeros(op.shape, device=device, dtype=dtype)
    idx = torch.arange(n, device=device)
    out[(idx,) * len(op.shape)] = 1
    return out


def _fill(op: Operand, device, dtype) -> torch.Tensor:
    return torch.full(op.shape, op.tensor.fill_value, device=device, dtype=dtype)


#: Lowering name -> builder of the runtime operand (``input`` is handled by ``run``).
MATERIALIZERS: Dict[str, Callable[[Operand, Any, Any], torch.Tensor]] = {
    "dense-pattern": _pattern,
    "dense-reduced": _reduced,
    "reduced-matrix": _reduced_matrix,
    "dense-delta": _delta,
    "fill": _fill,
}


#: Lowering name -> the runtime operand of a sliced pattern from the positions of the call
#: (never cached: they change with every draw). A gather step takes the positions as they are.
FROM_POSITIONS: Dict[str, Callable[[Operand, torch.Tensor, Any], torch.Tensor]] = {
    "gather": lambda op, positions, dtype: positions,
    "sliced-pattern": dense_sliced,
}

#: Lowerings of operands consumed inside a structured step (no runtime tensor of their own).
_NOT_MATERIALIZED = ("native", "view", "mirror", "window-sum", "reshape", "broadcast", "scatter")


class _Prepared:
    """What the backend keeps for one program: step runners, operand cache, fresh result."""

    __slots__ = ("steps", "operands", "fresh")

    def __init__(self, program: Program) -> None:
        if not program.is_concrete:
            raise CompileError("this plan has symbolic sizes; compile(diagram, sizes={...}) "
                               "with a value for each to run it")
        self.steps = [PREPARERS[step.kind](step) for step in program.steps]
        self.operands: Dict[tuple, torch.Tensor] = {}
        self.fresh = _allocates(program)


#: id(program) -> (weak reference to it, its prepared state).
_PREPARED: Dict[int, Tuple[Any, _Prepared]] = {}


def _prepared(program: Program) -> _Prepared:
    found = _PREPARED.get(id(program))
    if found is not None and found[0]() is program:
        return found[1]
    state = _Prepared(program)
    key = id(program)
    _PREPARED[key] = (weakref.ref(program), state)
    weakref.finalize(program, _PREPARED.pop, key, None)
    return state


def _bind(inputs: Sequence[str], args: Sequence[Any], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if len(args) > len(inputs):
        raise ShapeError(f"expected at most {len(inputs)} positional tensors {list(inputs)}, "
                         f"got {len(args)}")
    bound = dict(zip(inputs, args))
    for name, value in kwargs.items():
        if name not in inputs:
            raise UnknownNameError(f"the program has no input named {name!r}; "
                                   f"expected one of {list(inputs)}")
        if name in bound:
            raise ShapeError(f"input {name!r} given twice")
        bound[name] = value
    missing = [n for n in inputs if n not in bound]
    if missing:
        raise ShapeError(f"missing input tensor(s) {missing}; the program takes {list(inputs)}")
    return bound


def _check(program: AnyProgram, bound: Dict[str, Any]) -> None:
    """Every input a tensor of the planned shape; one dtype and one device for all (position
    vectors: integers in range, on that device)."""
    first: Optional[torch.Tensor] = None
    samples = sample_inputs(program)
    for name, shape in zip(program.inputs, program.input_shapes):
        t = bound[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"input {name!r} must be a torch.Tensor, got {type(t).__name__}")
        if t.shape != shape:
            if not program.is_concrete:
                raise CompileError("this plan has symbolic sizes; compile(diagram, "
                                   "sizes={...}) with a value for each to run it")
            raise ShapeError(f"tensor {name!r} has shape {list(t.shape)}, expected "
                             f"{list(shape)}")
        if name in samples:
            _check_positions(program, name, t, first)
            continue
        if first is None:
            first = t
        elif t.dtype != first.dtype or t.device != first.device:
            raise InvalidArgumentError(
                f"input {name!r} is {t.dtype} on {t.device} but {program.inputs[0]!r} is "
                f"{first.dtype} on {first.device}; give every input one dtype and device")


def _check_positions(program: AnyProgram, name: str, t: torch.Tensor,
                     first: Optional[torch.Tensor]) -> None:
    """A position vector: int64 on the inputs' device, every entry a position of its leg."""
    if t.dtype != torch.int64:
        raise InvalidArgumentError(f"input {name!r} holds kept positions and must have dtype "
                                   f"torch.int64, got {t.dtype}")
    if first is not None and t.device != first.device:
        raise InvalidArgumentError(f"input {name!r} is on {t.device} but the other inputs are "
                                   f"on {first.device}")
    full = _full_size(program, name)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= full):
        raise InvalidArgumentError(f"input {name!r}: kept positions must lie in [0, {full}), "
                                   f"got {int(t.min())}..{int(t.max())}")


def _full_size(program: AnyProgram, name: str) -> int:
    """The unsliced size of the leg whose kept positions the input ``name`` holds."""
    parts = [program] if isinstance(program, Program) else (
        program.terms if isinstance(program, SumProgram) else [program.whole])
    for part in parts:
        if isinstance(part, Program):
            found = [op.tensor.full_size for op in part.operands
                     if op.tensor.sample == name and op.tensor.full_size is not None]
            if found:
                return int(found[0])
        else:
            return _full_size(part, name)
    raise CompileError(f"no sliced pattern takes the positions {name!r}")


def run(program: AnyProgram, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Evaluate ``program`` on torch tensors given by name or in ``program.inputs`` order.

    >>> import torch
    >>> from tndiag import compile, ops
    >>> prog = compile(ops.conv((1, 1, 4), (1, 1, 2)))
    >>> run(prog, torch.ones(1, 1, 4), torch.ones(1, 1, 2)).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    if not kwargs and len(args) == len(program.inputs):
        bound = dict(zip(program.inputs, args))
    else:
        bound = _bind(program.inputs, args, kwargs)
    _check(program, bound)
    return _run_any(program, bound, True)


def _run_any(program: AnyProgram, bound: Dict[str, Any], own: bool) -> torch.Tensor:
    """The program's value; with ``own`` a tensor no input or cache shares."""
    if isinstance(program, SumProgram):
        return _run_sum(program, bound)
    if isinstance(program, SlicedProgram):
        return _run_sliced(program, bound, own)
    return _run_program(program, bound, own)


def _run_sum(program: SumProgram, bound: Dict[str, Any]) -> torch.Tensor:
    """Add the terms into the first term's result (made fresh) in place."""
    result: Optional[torch.Tensor] = None
    for term in program.terms:
        if result is None:
            result = _run_any(term, bound, True)
            continue
        value = _run_any(term, bound, False)
        if result.shape == value.shape and result.dtype == value.dtype:
            result.add_(value)
        else:
            result = result + value
    assert result is not None
    return result


def _allocates(program: Program) -> bool:
    """Whether the last step returns a new tensor (not a view of an operand)."""
    return bool(program.steps) and program.steps[-1].allocates


def _run_sliced(program: SlicedProgram, bound: Dict[str, Any], own: bool) -> torch.Tensor:
    """Run each chunk of the sliced leg; write it into the result (open leg) or add it."""
    first = bound[program.inputs[0]] if program.inputs else None
    plan = check_run(program, first.element_size() if first is not None else 4)
    if not plan.chunks:
        return _run_any(program.whole, bound, own)
    result: Optional[torch.Tensor] = None
    for chunk in plan.chunks:
        sub = {}
        for name, axis, per in zip(program.inputs, program.axes, program.per):
            t = bound[name]
            sub[name] = t if axis is None else t.narrow(axis, chunk.start * per,
                                                          (chunk.stop - chunk.start) * per)
        if program.out_axis is None:
            value = _run_any(chunk.program, sub, result is None)
            result = value if result is None else result.add_(value)
            continue
        value = _run_any(chunk.program, sub, False)
        if result is None:
            result = value.new_empty(tuple(int(s) for s in program.output_shape))
        start, length = chunk.start * program.out_per, (chunk.stop - chunk.start) * program.out_per
        result.narrow(program.out_axis, start, length).copy_(value)
    assert result is not None
    return result


def _runtime(program: Program, bound: Dict[str, Any]):
    first = bound[program.inputs[0]] if program.inputs else None
    device = first.device if first is not None else None
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    return device, dtype


def _operand_tensors(program: Program, state: _Prepared, bound: Dict[str, Any]) -> List[Any]:
    device, dtype = _runtime(program, bound)
    tensors: List[Any] = []
    for op in program.operands:
        if op.lowering == "input":
            t = bound[op.name]
            tensors.append(t if t.shape == op.shape else t.reshape(op.shape))
            continue
        if op.lowering in FROM_POSITIONS:  # built from this call's kept positions
            tensors.append(FROM_POSITIONS[op.lowering](op, bound[op.tensor.sample], dtype))
            continue
        if op.lowering in _NOT_MATERIALIZED:
            tensors.append(None)
            continue
        key = (op.name, op.lowering, op.shape, device, dtype)
        cached = state.operands.get(key)
        if cached is None:
            cached = state.operands[key] = MATERIALIZERS[op.lowering](op, device, dtype)
        tensors.append(cached)
    return tensors


def _run_program(program: Program, bound: Dict[str, Any], own: bool) -> torch.Tensor:
    state = _prepared(program)
    current = _operand_tensors(program, state, bound)
    for step, fn in zip(program.steps, state.steps):
        positions = step.positions
        if len(positions) == 1:
            taken = [current.pop(positions[0])]
        else:
            taken = [current[p] for p in positions]
            for p in sorted(positions, reverse=True):
                current.pop(p)
        current.append(fn(taken))
    result = current[-1]
    if program.scale != 1:
        result = result.mul_(program.scale) if state.fresh else result * program.scale
    elif own and not state.fresh:
        result = result.clone()
    return result if result.shape == program.output_shape else result.reshape(
        program.output_shape)
