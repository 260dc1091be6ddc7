"""Runs a compiled :class:`~tndiag.codegen.Program` on torch tensors (any device, any dtype).

Programs are pure data; what the backend prepares for one (a runner per step, materialized
pattern and constant operands per device and dtype) lives in :data:`_PREPARED`, keyed by the
program's identity and dropped with the program. Results never alias an input or a cached
operand: a program whose last step is a view returns a copy.
"""

from __future__ import annotations

import operator
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from tndiag.backends.kernels import ANY_LAYOUT, dense_pattern, finish, run_sliced, run_sum
from tndiag.backends.torch_gather import dense_sliced
from tndiag.backends.torch_native import MATERIALIZERS
from tndiag.backends.tune import prepare_step
from tndiag.codegen.bounded import check_run
from tndiag.codegen.program import (
    AnyProgram,
    LoweringKind,
    Operand,
    Program,
    SlicedProgram,
    SumProgram,
    sample_inputs,
)
from tndiag.errors import CompileError, InvalidArgumentError, ShapeError, UnknownNameError

__all__ = ["run", "run_checked", "runner", "MATERIALIZERS", "FROM_POSITIONS", "dense_pattern",
           "dense_reduced"]


def dense_reduced(I: int, O: int, K: int, stride: int, pad_left: int, dilation: int,
                  device=None, dtype=None) -> torch.Tensor:
    """``Σ_o Π[i, o, k]`` summed from the dense Π (an oracle for the count matrix).

    >>> dense_reduced(4, 2, 3, 1, 0, 1).tolist()[1]
    [1.0, 1.0, 0.0]
    """
    return dense_pattern(I, O, K, stride, pad_left, dilation, device, dtype).sum(1)


#: Lowering -> the runtime operand of a sliced pattern from the positions of the call (never
#: cached: they change with every draw). A gather step takes the positions as they are.
FROM_POSITIONS: Dict[LoweringKind, Callable[[Operand, torch.Tensor, Any], torch.Tensor]] = {
    LoweringKind.GATHER: lambda op, positions, dtype: positions,
    LoweringKind.SLICED_PATTERN: dense_sliced,
}


class _Prepared:
    """What the backend keeps for one program: step runners, operand cache, fresh result."""

    __slots__ = ("steps", "operands", "fresh", "direct")

    def __init__(self, program: Program) -> None:
        if not program.is_concrete:
            raise CompileError("this plan has symbolic sizes; compile(diagram, sizes={...}) "
                               "with a value for each to run it")
        self.steps = [prepare_step(step) for step in program.steps]
        self.operands: Dict[tuple, torch.Tensor] = {}
        self.fresh = _allocates(program)
        self.direct = _direct(program, self.steps) if self.fresh else None


def _direct(program: Program, runners: List[Callable]) -> Optional[Callable]:
    """A runner of checked positional inputs for a program whose operands are all inputs or
    consumed by steps and whose last step allocates its result (see :func:`run_checked`)."""
    scale = program.scale
    slots: List[Optional[int]] = []
    reshapes: Dict[int, Tuple[int, ...]] = {}  # operand position -> its planned shape
    for n, op in enumerate(program.operands):
        if op.lowering is LoweringKind.INPUT:
            slots.append(program.inputs.index(op.name))
            if tuple(op.shape) != tuple(op.tensor.shape):
                reshapes[n] = tuple(int(v) for v in op.shape)
        elif op.lowering.consumed:
            slots.append(None)
        else:
            return None
    shape = tuple(int(v) for v in program.output_shape)
    if not slots:
        return None
    if scale == 1 and _chained(program):  # every input goes to the first step
        if getattr(runners[0], "func", None) in ANY_LAYOUT:
            reshapes = {}  # the kernel reshapes its operand itself
        first = _one_step(program.steps[0].positions, slots, reshapes, len(program.inputs),
                          runners[0], shape if len(runners) == 1 else None)
        return first if len(runners) == 1 else _then(first, runners[1:], shape)
    plan = [_taker(step.positions) + (fn,) for step, fn in zip(program.steps, runners)]
    initial = [len(program.inputs) if i is None else i for i in slots]
    pick = operator.itemgetter(*initial, *initial[:1])  # a tuple even for one operand

    def run(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        current: List[Any] = list(pick((*tensors, None)))[:-1]
        for n, planned in reshapes.items():
            current[n] = current[n].reshape(planned)
        for single, take, backwards, fn in plan:
            if single is not None:  # one operand: popped
                current.append(fn((current.pop(single),)))
                continue
            taken = take(current)
            for p in backwards:
                del current[p]
            current.append(fn(taken))
        result = current[-1] if scale == 1 else current[-1].mul_(scale)
        return result if result.shape == shape else result.reshape(shape)
    return run


def _chained(program: Program) -> bool:
    """Whether every step after the first takes the previous step's result alone (KFAC-reduce:
    window sums, then their Gram product)."""
    live = len(program.operands)
    for n, step in enumerate(program.steps):
        if n and step.positions != (live - 1,):
            return False
        live += 1 - len(step.positions)
    return True


def _then(first: Callable, rest: Sequence[Callable], shape: Tuple[int, ...]) -> Callable:
    """The runner of a chain: ``first`` on the inputs, then each step of ``rest`` on the
    previous result, the last result reshaped when needed."""
    if len(rest) == 1:
        (fn,) = rest

        def run_two(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
            result = fn((first(tensors),))
            return result if result.shape == shape else result.reshape(shape)
        return run_two

    def run_chain(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        result = first(tensors)
        for fn in rest:
            result = fn((result,))
        return result if result.shape == shape else result.reshape(shape)
    return run_chain


def _taker(positions: Sequence[int]) -> Tuple[Optional[int], Callable, List[int]]:
    """(the position when a step takes one operand, else None; a getter of the operands it
    takes (used for two or more: a tuple); their positions from the last)."""
    if len(positions) == 1:
        return positions[0], operator.itemgetter(positions[0]), []
    return None, operator.itemgetter(*positions), sorted(positions, reverse=True)


def _one_step(positions: Sequence[int], slots: Sequence[Optional[int]],
              reshapes: Dict[int, Tuple[int, ...]], inputs: int, fn: Callable,
              shape: Optional[Tuple[int, ...]]) -> Callable:
    """The runner of a one-step program: the step on the inputs it takes (None for an operand
    the step consumes, e.g. a pattern inside a convolution; inputs reshaped to their planned
    shapes), its result reshaped when needed (``shape`` None: as it is, the first step of a
    chain)."""
    order = [inputs if i is None else i for i in (slots[p] for p in positions)]
    planned = [(j, reshapes[p]) for j, p in enumerate(positions) if p in reshapes]
    if len(order) == 1:
        only, to = order[0], planned[0][1] if planned else None

        def run_one(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
            t = tensors[only]
            result = fn((t if to is None else t.reshape(to),))
            return result if shape is None or result.shape == shape else result.reshape(shape)
        return run_one
    pick = operator.itemgetter(*order)

    def run(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        taken = pick((*tensors, None))
        if planned:
            taken = list(taken)
            for j, to in planned:
                taken[j] = taken[j].reshape(to)
        result = fn(taken)
        return result if shape is None or result.shape == shape else result.reshape(shape)
    return run


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
    vectors: int64 in range, on that device)."""
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
    if isinstance(program, Program):
        found = [op.tensor.full_size for op in program.operands
                 if op.tensor.sample == name and op.tensor.full_size is not None]
        return int(found[0]) if found else 0
    parts = program.terms if isinstance(program, SumProgram) else (program.whole,)
    return max(_full_size(part, name) for part in parts)


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
    return run_sum([_term(t, bound) for t in program.terms])


def _term(program: AnyProgram, bound: Dict[str, Any]) -> Callable[[bool], torch.Tensor]:
    return lambda own: _run_any(program, bound, own)


def _allocates(program: Program) -> bool:
    """Whether the last step returns a new tensor (not a view of an operand)."""
    return bool(program.steps) and program.steps[-1].allocates


def _run_sliced(program: SlicedProgram, bound: Dict[str, Any], own: bool) -> torch.Tensor:
    """Run each chunk of the sliced leg; write it into the result (open leg) or add it."""
    inputs = [bound[n] for n in program.inputs]
    plan = check_run(program, inputs[0].element_size() if inputs else 4)
    chunks = tuple((c.start, c.stop, _chunk(program.inputs, c.program))
                   for c in plan.chunks) or None
    return run_sliced(inputs, chunks, _term(program.whole, bound), own, program.axes,
                      program.per, program.out_axis, program.out_per,
                      tuple(int(s) for s in program.output_shape))


def _chunk(names: Sequence[str], program: Program) -> Callable[[List[Any], bool], torch.Tensor]:
    return lambda sub, own: _run_any(program, dict(zip(names, sub)), own)


def _runtime(program: Program, bound: Dict[str, Any]):
    first = bound[program.inputs[0]] if program.inputs else None
    device = first.device if first is not None else None
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    return device, dtype


def _operand_tensors(program: Program, state: _Prepared, bound: Dict[str, Any]) -> List[Any]:
    device, dtype = _runtime(program, bound)
    tensors: List[Any] = []
    for op in program.operands:
        if op.lowering is LoweringKind.INPUT:
            t = bound[op.name]
            tensors.append(t if t.shape == op.shape else t.reshape(op.shape))
            continue
        if op.lowering in FROM_POSITIONS:  # built from this call's kept positions
            tensors.append(FROM_POSITIONS[op.lowering](op, bound[str(op.tensor.sample)], dtype))
            continue
        if op.lowering.consumed:
            tensors.append(None)
            continue
        key = (op.name, op.lowering, op.shape, device, dtype)
        cached = state.operands.get(key)
        if cached is None:
            build, args = MATERIALIZERS[op.lowering](op)
            cached = state.operands[key] = build(*args, device, dtype)
        tensors.append(cached)
    return tensors


def _run_program(program: Program, bound: Dict[str, Any], own: bool) -> torch.Tensor:
    state = _prepared(program)
    if state.direct is not None:  # a fresh result, whatever ``own`` asks
        return state.direct(tuple(bound[name] for name in program.inputs))
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
    return finish(current[-1], program.scale, state.fresh, own, program.output_shape)


def runner(program: AnyProgram) -> Callable[[Sequence[torch.Tensor]], torch.Tensor]:
    """The function :func:`run_checked` calls for ``program``: it takes a sequence of tensors
    already checked (positional, in ``program.inputs`` order, of the planned shapes, one
    dtype and device), so a caller that keeps it skips the lookup on every call.

    >>> import torch
    >>> from tndiag import compile, ops
    >>> run = runner(compile(ops.conv((1, 1, 4), (1, 1, 2))))
    >>> run((torch.ones(1, 1, 4), torch.ones(1, 1, 2))).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    if type(program) is Program:
        direct = _prepared(program).direct
        if direct is not None:
            return direct
    return lambda tensors: _run_any(program, dict(zip(program.inputs, tensors)), True)


def run_checked(program: AnyProgram, *tensors: torch.Tensor) -> torch.Tensor:
    """:func:`run` for a caller that has checked the tensors already: positional, in
    ``program.inputs`` order, of the planned shapes, one dtype and device (as
    ``tndiag.functional`` does). Same result as :func:`run`, with less work per call.

    >>> import torch
    >>> from tndiag import compile, ops
    >>> run_checked(compile(ops.conv((1, 1, 4), (1, 1, 2))), torch.ones(1, 1, 4),
    ...             torch.ones(1, 1, 2)).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    return runner(program)(tensors)
