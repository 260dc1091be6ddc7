"""Export for the torch backend: a compiled plan written as a standalone module (torch only).

The module holds the text of :mod:`tndiag.backends.kernels` (the functions every compiled
program runs) and of every other kernel module a step of the program calls — the route
kernels of :mod:`tndiag.backends.routes`, the gather kernel — each once, before the modules
that use it; each step's recipe as a literal, along the route the step runs; and one
function per program that builds its operands (:data:`~tndiag.backends.torch_native.MATERIALIZERS`,
:data:`FROM_POSITIONS` for tensor dropout's kept positions) and calls the step kernels in
order (:data:`EMITTERS`, one row per step kind) — the same calls, with the same arguments,
as the backend's runners. Sums and memory-bounded programs run through the same kernels
(``run_sum``, ``run_sliced``) as in the backend.

What a kernel module may import, and how its text is read: :mod:`tndiag.backends.export_text`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Mapping, Tuple

from tndiag.backends import kernels
from tndiag.backends.export_text import ALLOWED_IMPORTS, kernel_text, module_source, modules_text
from tndiag.backends.torch_gather import sliced_pattern_tensor
from tndiag.backends.torch_native import MATERIALIZERS, STEPS, Recipe
from tndiag.codegen import tuning
from tndiag.codegen.bounded import ITEMSIZES
from tndiag.codegen.program import (
    AnyProgram,
    LoweringKind,
    Operand,
    Program,
    SlicedProgram,
    Step,
    StepKind,
    SumProgram,
)
from tndiag.errors import CompileError

__all__ = ["EMITTERS", "FROM_POSITIONS", "ALLOWED_IMPORTS", "kernel_text", "module_source",
           "kernel_source", "modules_text", "exported_route", "program_functions"]


def exported_route(step: Step) -> Step:
    """``step`` as the exported code runs it: along its chosen route. A step the backend
    measures on first run (``tune``) takes the winner the tuning cache holds for the default
    dtype on the CPU at the current thread count, else the cost model's route.

    >>> from tndiag import compile, ops
    >>> (step,) = compile(ops.conv((1, 1, 32), (4, 1, 4), stride=2), route="gemm").steps
    >>> exported_route(step).route
    'gemm'
    """
    if not step.tune:
        return step
    import torch

    from tndiag.backends.tune import context_of

    winner = tuning.lookup(step, context_of(torch.empty(0)))
    return dataclasses.replace(step, route=winner if winner in step.routes else step.route,
                               tune=False)


def _emit(kind: StepKind) -> Callable[[Step], Recipe]:
    """The kind's ``(kernel, recipe)`` (the backend's own row) along the exported route."""
    def recipe(step: Step) -> Recipe:
        return STEPS[kind](exported_route(step))
    return recipe


#: Step kind -> the ``(kernel, recipe)`` the exported call uses (the backend's own rows).
EMITTERS: Dict[StepKind, Callable[[Step], Recipe]] = {kind: _emit(kind) for kind in StepKind}


def _sliced_pattern(op: Operand) -> Recipe:
    p = op.tensor.pattern_params
    _, O, K = (int(v) for v in op.shape)
    return sliced_pattern_tensor, (O, K, p.stride, p.pad_left, p.dilation)


#: Lowering -> ``(builder, arguments)`` of an operand made from the call's kept positions
#: (``builder(positions, *arguments, dtype)``; None: the positions themselves), as the
#: backend's :data:`~tndiag.backends.torch.FROM_POSITIONS` makes it.
FROM_POSITIONS: Dict[LoweringKind, Callable[[Operand], Recipe] | None] = {
    LoweringKind.GATHER: None, LoweringKind.SLICED_PATTERN: _sliced_pattern}


def kernel_source(program: AnyProgram) -> str:
    """The imports and text of :mod:`tndiag.backends.kernels` and of every other kernel
    module ``program`` calls (each once, after the modules it needs).

    Raises:
        CompileError: when two of those modules define the same name (one namespace).

    >>> "def run_routed(" in kernel_source(__import__("tndiag").compile(
    ...     __import__("tndiag").ops.conv((1, 1, 32), (4, 1, 4)), route="gemm"))
    True
    """
    used = [kernels.__name__]
    for step in _steps(program):
        used.append(EMITTERS[step.kind](step)[0].__module__)
    for op in (op for p in _plain_programs(program) for op in p.operands):
        found = FROM_POSITIONS.get(op.lowering)
        if found is not None:
            used.append(found(op)[0].__module__)
    return modules_text(used)


def _plain_programs(program: AnyProgram) -> List[Program]:
    """Every plain program ``program`` runs: its terms, unsliced programs and chunks."""
    if isinstance(program, SumProgram):
        return [p for t in program.terms for p in _plain_programs(t)]
    if isinstance(program, SlicedProgram):
        return [program.whole, *(c.program for p in program.plans for c in p.chunks)]
    return [program]


def _steps(program: AnyProgram) -> List[Step]:
    return [s for p in _plain_programs(program) for s in p.steps]


class _Writer:
    """Collects module-level constants and functions while programs are written."""

    def __init__(self) -> None:
        self.constants: List[str] = []
        self.functions: List[str] = []
        self.names: Dict[int, str] = {}

    def constant(self, value: object) -> str:
        name = f"_R{len(self.constants)}"
        self.constants.append(f"{name} = {value!r}")
        return name


def _operand_lines(program: Program, args: Mapping[str, str], w: _Writer) -> List[str]:
    lines = []
    for n, op in enumerate(program.operands):
        if op.lowering is LoweringKind.INPUT:
            var = args[op.name]
            shape = tuple(int(s) for s in op.shape)
            reshaped = f"{var}.reshape({shape!r})" if shape != tuple(
                int(s) for s in op.tensor.shape) else var
            lines.append(f"_x{n} = {reshaped}")
        elif op.lowering in FROM_POSITIONS:  # made from this call's kept positions
            lines.append(f"_x{n} = {_from_positions(op, args)}")
        elif op.lowering.consumed:
            lines.append(f"_x{n} = None  # {op.name}: inside a {op.lowering.value} step")
        elif op.lowering not in MATERIALIZERS:
            raise CompileError(f"export cannot write operand {op.name!r}: its lowering "
                               f"{op.lowering.value!r} has no builder")
        else:
            build, build_args = MATERIALIZERS[op.lowering](op)
            call = ", ".join([f"({n}, _device, _dtype)", build.__name__, *map(repr, build_args)])
            lines.append(f"_x{n} = cached(_STORE{len(w.functions)}, {call}, _device, _dtype)")
    return lines


def _from_positions(op: Operand, args: Mapping[str, str]) -> str:
    """The expression of an operand made from the kept positions (never cached)."""
    positions = args[str(op.tensor.sample)]
    build = FROM_POSITIONS[op.lowering]
    if build is None:
        return positions
    kernel, build_args = build(op)
    return f"{kernel.__name__}({', '.join([positions, *map(repr, build_args)])}, _dtype)"


def _step_lines(program: Program, w: _Writer) -> Tuple[List[str], str]:
    lines, stack = [], [f"_x{n}" for n in range(len(program.operands))]
    for n, step in enumerate(program.steps):
        kernel, recipe = EMITTERS[step.kind](step)
        taken = [stack[p] for p in step.positions]
        for p in sorted(step.positions, reverse=True):
            stack.pop(p)
        lines.append(f"_t{n} = {kernel.__name__}({w.constant(recipe)}, [{', '.join(taken)}])"
                     f"  # {step.label}: {step.equation}")
        stack.append(f"_t{n}")
    return lines, stack[-1]


def _program_function(program: Program, args: Mapping[str, str], w: _Writer) -> str:
    """``_p<n>(inputs..., own)`` computing one program; its name."""
    found = w.names.get(id(program))
    if found is not None:
        return found
    name = f"_p{len(w.functions)}"
    params = [args[n] for n in program.inputs]
    first = params[0] if params else None
    body = [f"_device, _dtype = {first}.device, {first}.dtype" if first else
            "_device, _dtype = None, torch.get_default_dtype()"]
    body += _operand_lines(program, args, w)
    steps, result = _step_lines(program, w)
    fresh = bool(program.steps) and program.steps[-1].allocates
    shape = tuple(int(s) for s in program.output_shape)
    body += steps + [f"return finish({result}, {program.scale!r}, {fresh}, own, {shape!r})"]
    store = f"_STORE{len(w.functions)}: dict = {{}}"
    head = f"def {name}({', '.join(params + ['own'])}):"
    doc = f'    """{program.equation}"""'
    w.functions.append("\n".join([store, "", "", head, doc, *("    " + ln for ln in body)]))
    w.names[id(program)] = name
    return name


def _call(program: AnyProgram, args: Mapping[str, str], own: str, w: _Writer) -> str:
    """An expression evaluating ``program`` (``own``: the flag's expression)."""
    if isinstance(program, SumProgram):
        terms = ", ".join(f"lambda own: {_call(t, args, 'own', w)}" for t in program.terms)
        return f"run_sum([{terms}])"
    if isinstance(program, SlicedProgram):
        return _sliced_call(program, args, own, w)
    params = [args[n] for n in program.inputs] + [own]
    return f"{_program_function(program, args, w)}({', '.join(params)})"


def _sliced_call(program: SlicedProgram, args: Mapping[str, str], own: str, w: _Writer) -> str:
    inputs = [args[n] for n in program.inputs]
    plans = {}
    for size in ITEMSIZES:
        plan = program.plan_for(size)
        chunks = [f"({c.start}, {c.stop}, lambda sub, own: "
                  f"{_program_function(c.program, args, w)}(*sub, own))" for c in plan.chunks]
        plans[size] = f"({', '.join(chunks)},)" if chunks else "None"
    table = "{" + ", ".join(f"{k}: {v}" for k, v in plans.items()) + "}"
    name = f"_CHUNKS{len(w.functions)}"
    w.functions.append(f"{name} = {table}  # element size -> chunks (None: unsliced)")
    whole = f"lambda own: {_call(program.whole, args, 'own', w)}"
    shape = tuple(int(s) for s in program.output_shape)
    return (f"run_sliced([{', '.join(inputs)}], {name}.get({inputs[0]}.element_size()), "
            f"{whole}, {own}, {program.axes!r}, {program.per!r}, {program.out_axis!r}, "
            f"{program.out_per!r}, {shape!r})")


def program_functions(program: AnyProgram, args: Mapping[str, str]) -> Tuple[str, str]:
    """The module-level text (recipes, then program functions) and the expression computing
    ``program`` from the argument names ``args`` (a fresh result).

    >>> from tndiag import compile, ops
    >>> text, expr = program_functions(compile(ops.conv((1, 2, 5), (3, 2, 3))),
    ...                                {"X": "X", "W": "W"})
    >>> expr, "run_conv(_R0, [_x0, _x2, _x1])" in text
    ('_p0(X, W, True)', True)
    """
    w = _Writer()
    expr = _call(program, args, "True", w)
    return "\n".join(w.constants) + "\n\n\n" + "\n\n\n".join(w.functions), expr
