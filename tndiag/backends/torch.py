"""Runs a compiled :class:`~tndiag.codegen.Program` on torch tensors (any device, any dtype)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Sequence

import torch

from tndiag.backends.torch_native import PREPARERS, reduced_matrix
from tndiag.codegen.program import AnyProgram, Operand, Program, SlicedProgram, SumProgram
from tndiag.errors import ShapeError, UnknownNameError

__all__ = ["run", "MATERIALIZERS", "dense_pattern", "dense_reduced"]


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
    t, p = op.tensor, op.tensor.params
    I, O, K = op.shape
    return dense_pattern(I, O, K, p.stride, p.pad_left, p.dilation, device, dtype)


def _out_size(t) -> int:
    """O of a pattern (its o leg) or of a reduced pattern (its ``out_size``)."""
    return int(t.out_size) if t.out_size is not None else int(t.indices[1].size)


def _reduced(op: Operand, device, dtype) -> torch.Tensor:
    t, p = op.tensor, op.tensor.params
    I, K = op.shape
    return dense_reduced(I, _out_size(t), K, p.stride, p.pad_left, p.dilation, device, dtype)


def _reduced_matrix(op: Operand, device, dtype) -> torch.Tensor:
    t, p = op.tensor, op.tensor.params
    I, K = op.shape
    return reduced_matrix(I, _out_size(t), K, p.stride, p.pad_left, p.dilation, device, dtype)


def _delta(op: Operand, device, dtype) -> torch.Tensor:
    n = op.shape[0]
    out = torch.zeros(op.shape, device=device, dtype=dtype)
    idx = torch.arange(n, device=device)
    out[(idx,) * len(op.shape)] = 1
    return out


def _fill(op: Operand, device, dtype) -> torch.Tensor:
    return torch.full(op.shape, float(op.tensor.value), device=device, dtype=dtype)


#: Lowering name -> builder of the runtime operand (``input`` is handled by ``run``).
MATERIALIZERS: Dict[str, Callable[[Operand, Any, Any], torch.Tensor]] = {
    "dense-pattern": _pattern,
    "dense-reduced": _reduced,
    "reduced-matrix": _reduced_matrix,
    "dense-delta": _delta,
    "fill": _fill,
}


#: Lowerings of operands consumed inside a structured step (no runtime tensor of their own).
_NOT_MATERIALIZED = ("native", "view", "mirror", "window-sum", "reshape", "broadcast", "scatter")


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
    for name, shape in zip(program.inputs, program.input_shapes):
        got = bound[name].shape
        if got != shape:
            raise ShapeError(f"tensor {name!r} has shape {list(got)}, expected {list(shape)}")
    return _run_any(program, bound)


def _run_any(program: AnyProgram, bound: Dict[str, Any]) -> torch.Tensor:
    if isinstance(program, SumProgram):
        return _run_sum(program, bound)
    if isinstance(program, SlicedProgram):
        return _run_sliced(program, bound)
    return _run_program(program, bound)


def _run_sum(program: SumProgram, bound: Dict[str, Any]) -> torch.Tensor:
    """Add the terms; into the first fresh full-size result in place (a broadcast term
    stays a view)."""
    result, owned = None, False
    for term in program.terms:
        value = _run_any(term, bound)
        if result is None:
            result, owned = value, _fresh_result(term)
        elif owned and result.shape == program.output_shape and result.dtype == value.dtype:
            result.add_(value)
        else:
            result, owned = result + value, True
    return result


def _fresh_result(program: AnyProgram) -> bool:
    """Whether the program's result is a new tensor no input or cache shares."""
    if not isinstance(program, Program):
        return False
    fresh = program.cache.get("fresh")
    if fresh is None:
        fresh = program.cache["fresh"] = _allocates(program)
    return fresh or program.scale != 1


def _allocates(program: Program) -> bool:
    last = program.steps[-1] if program.steps else None
    return last is not None and (last.kind in ("gram", "native", "scatter") or (
        last.kind == "einsum" and len(last.positions) > 1))


def _run_sliced(program: SlicedProgram, bound: Dict[str, Any]) -> torch.Tensor:
    """Run each chunk of the sliced leg and concatenate (open leg) or add (summed leg)."""
    first = bound[program.inputs[0]]
    parts = program.parts(first.element_size())
    total = int(program.graph.index(program.leg).size)
    chunks, result = [], None
    for start, stop, prog in parts:
        sub = {}
        for name, axis, shape in zip(program.inputs, program.axes, program.input_shapes):
            t = bound[name]
            if axis is not None:
                per = int(shape[axis]) // total
                t = t.narrow(axis, start * per, (stop - start) * per)
            sub[name] = t
        value = _run_any(prog, sub)
        if program.out_axis is None:
            result = value if result is None else result.add_(value)
        else:
            chunks.append(value)
    return result if program.out_axis is None else torch.cat(chunks, program.out_axis)


def _runtime(program: Program, bound: Dict[str, Any]):
    first = bound[program.inputs[0]] if program.inputs else None
    device = first.device if first is not None else None
    dtype = first.dtype if first is not None else torch.get_default_dtype()
    return device, dtype


def _operand_tensors(program: Program, bound: Dict[str, Any]) -> list:
    device, dtype = _runtime(program, bound)
    tensors = []
    for op in program.operands:
        if op.lowering == "input":
            t = bound[op.name]
            tensors.append(t if t.shape == op.shape else t.reshape(op.shape))
            continue
        if op.lowering in _NOT_MATERIALIZED:
            tensors.append(None)
            continue
        key = (op.name, op.lowering, op.shape, device, dtype)
        cached = program.cache.get(key)
        if cached is None:
            cached = MATERIALIZERS[op.lowering](op, device, dtype)
            program.cache[key] = cached
        tensors.append(cached)
    return tensors


def _step_functions(program: Program) -> list:
    """One prepared callable per step (permutations, shapes, kernels resolved once)."""
    fns = program.cache.get("steps")
    if fns is None:
        fns = [PREPARERS[step.kind](step) for step in program.steps]
        program.cache["steps"] = fns
    return fns


def _run_program(program: Program, bound: Dict[str, Any]) -> torch.Tensor:
    current = _operand_tensors(program, bound)
    for step, fn in zip(program.steps, _step_functions(program)):
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
        fresh = program.cache.get("fresh")
        if fresh is None:  # does the last step allocate its result (no view of an input)?
            fresh = program.cache["fresh"] = _allocates(program)
        result = result.mul_(program.scale) if fresh else result * program.scale
    return result if result.shape == program.output_shape else result.reshape(
        program.output_shape)
