"""Export for the torch backend: a compiled plan written as a standalone module (torch only).

The module holds the text of :mod:`tndiag.backends.kernels` (the functions every compiled
program runs, once per file; a step whose kernel lives in another torch-only module brings
that module's text too), each step's recipe as a literal, and one function per program
that builds its operands (:data:`~tndiag.backends.torch_native.MATERIALIZERS`) and calls the
step kernels in order (:data:`EMITTERS`, one row per step kind) — the same calls, with the same
arguments, as the backend's runners. Sums and memory-bounded programs run through the same
kernels (``run_sum``, ``run_sliced``) as in the backend.
"""

from __future__ import annotations

import ast
import inspect
import sys
from types import ModuleType
from typing import Callable, Dict, List, Mapping, Tuple

from tndiag.backends import kernels
from tndiag.backends.torch_native import MATERIALIZERS, STEPS, Recipe
from tndiag.codegen.bounded import ITEMSIZES
from tndiag.codegen.program import (
    AnyProgram,
    LoweringKind,
    Program,
    SlicedProgram,
    Step,
    StepKind,
    SumProgram,
)
from tndiag.errors import CompileError

__all__ = ["EMITTERS", "ALLOWED_IMPORTS", "module_source", "kernel_source",
           "program_functions"]


def _emit(kind: StepKind) -> Callable[[Step], Recipe]:
    return STEPS[kind]


#: Step kind -> the ``(kernel, recipe)`` the exported call uses (the backend's own rows).
EMITTERS: Dict[StepKind, Callable[[Step], Recipe]] = {kind: _emit(kind) for kind in StepKind}


#: Imports a kernel module may have: the exported module repeats exactly these.
ALLOWED_IMPORTS = frozenset({"__future__", "torch", "torch.nn.functional", "typing"})


def module_source(module: ModuleType) -> str:
    """A kernel module's text without its docstring, imports and ``__all__``.

    Raises:
        CompileError: when the module imports anything but torch (the exported code could
            not run without it).

    >>> "def run_native(" in module_source(kernels)
    True
    """
    text = inspect.getsource(module)
    tree = ast.parse(text)
    lines = text.splitlines()
    keep = []
    for n, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            if any(name not in ALLOWED_IMPORTS for name in names):
                raise CompileError(f"kernel module {module.__name__} imports {names}; the "
                                   "exported code may import only torch")
            continue
        docstring = n == 0 and isinstance(node, ast.Expr) and isinstance(node.value,
                                                                           ast.Constant)
        exported = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        if not (docstring or exported):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            keep.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n\n\n".join(keep)


def kernel_source(program: AnyProgram) -> str:
    """The text of :mod:`tndiag.backends.kernels` and of every other module whose kernels
    ``program`` calls (each once)."""
    modules = {kernels.__name__: kernels}
    for step in _steps(program):
        kernel, _ = EMITTERS[step.kind](step)
        modules.setdefault(kernel.__module__, sys.modules[kernel.__module__])
    return "\n\n\n".join(module_source(m) for m in modules.values())


def _steps(program: AnyProgram) -> List[Step]:
    if isinstance(program, SumProgram):
        return [s for t in program.terms for s in _steps(t)]
    if isinstance(program, SlicedProgram):
        chunks = [c.program for p in program.plans for c in p.chunks]
        return [s for p in (program.whole, *chunks) for s in p.steps]
    return list(program.steps)


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
        elif op.lowering.consumed:
            lines.append(f"_x{n} = None  # {op.name}: inside a {op.lowering.value} step")
        elif op.lowering not in MATERIALIZERS:
            raise CompileError(f"export cannot write operand {op.name!r}: its lowering "
                               f"{op.lowering.value!r} is built from the kept positions of "
                               "each call (tensor dropout); run the compiled program instead")
        else:
            build, build_args = MATERIALIZERS[op.lowering](op)
            call = ", ".join([f"({n}, _device, _dtype)", build.__name__, *map(repr, build_args)])
            lines.append(f"_x{n} = cached(_STORE{len(w.functions)}, {call}, _device, _dtype)")
    return lines


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
    >>> expr, "run_native(_R0, [_x0, _x2, _x1])" in text
    ('_p0(X, W, True)', True)
    """
    w = _Writer()
    expr = _call(program, args, "True", w)
    return "\n".join(w.constants) + "\n\n\n" + "\n\n\n".join(w.functions), expr
