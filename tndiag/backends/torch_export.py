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

A kernel module may import the modules of :data:`ALLOWED_IMPORTS` (repeated in the exported
module), names of another kernel module of ``tndiag.backends`` (whose text comes first), and
any tndiag name it uses in annotations only; anything else is a :class:`CompileError`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Dict, FrozenSet, List, Mapping, Tuple

from tndiag.backends import kernels
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

__all__ = ["EMITTERS", "FROM_POSITIONS", "ALLOWED_IMPORTS", "KernelText", "kernel_text",
           "module_source", "kernel_source", "modules_text", "exported_route",
           "program_functions"]


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


#: Standard-library and torch modules a kernel module may import (the exported module
#: repeats these imports).
ALLOWED_IMPORTS = frozenset({"__future__", "torch", "torch.nn.functional", "typing",
                             "functools", "itertools", "math"})


@dataclass(frozen=True)
class KernelText:
    """A kernel module as exported text: ``imports`` (statements of allowed modules),
    ``needs`` (kernel modules whose names it uses, exported first), the top-level ``names``
    it defines and its ``text`` (without docstring, imports and ``__all__``)."""

    module: str
    imports: Tuple[str, ...]
    needs: Tuple[str, ...]
    names: FrozenSet[str]
    text: str


def _annotation_nodes(tree: ast.AST) -> set:
    """ids of every node inside an annotation (never evaluated under postponed annotations)."""
    roots: List[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            roots += [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg,
                                             a.kwarg) if x is not None and x.annotation]
            roots += [node.returns] if node.returns is not None else []
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for r in roots for n in ast.walk(r)}


def _defined(node: ast.stmt) -> List[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, ast.AnnAssign) else [])
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _tndiag_import(module: str, node: ast.ImportFrom, runtime: set) -> str:
    """The kernel module an import of tndiag names needs ("" when used in annotations only)."""
    used = [a.asname or a.name for a in node.names if (a.asname or a.name) in runtime]
    if not used:
        return ""
    source = node.module or ""
    if source.startswith("tndiag.backends.") and source != module:
        found = kernel_text(source)
        missing = [a.name for a in node.names if a.name not in found.names or a.asname]
        if not missing:
            return source
    raise CompileError(f"kernel module {module} uses {used} from {source} at run time; the "
                       "exported code may import only torch and other kernel modules")


@functools.lru_cache(maxsize=None)
def kernel_text(name: str) -> KernelText:
    """The exported form of the kernel module ``name`` (see :class:`KernelText`).

    Raises:
        CompileError: when the module imports anything the exported code cannot have.

    >>> found = kernel_text("tndiag.backends.routes.conv")
    >>> found.needs, "run_routed" in found.names
    (('tndiag.backends.kernels', 'tndiag.backends.routes.fold'), True)
    """
    text = inspect.getsource(importlib.import_module(name))
    tree = ast.parse(text)
    lines = text.splitlines()
    annotations = _annotation_nodes(tree)
    runtime = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
               and id(n) not in annotations}
    imports: List[str] = []
    needs: List[str] = []
    names: List[str] = []
    keep = []
    for n, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tndiag"):
            needs += [m for m in [_tndiag_import(name, node, runtime)] if m]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            if any(m not in ALLOWED_IMPORTS for m in modules):
                raise CompileError(f"kernel module {name} imports {modules}; the exported "
                                   "code may import only torch")
            imports.append(ast.unparse(node))
        elif not (n == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  or "__all__" in _defined(node)):
            names += _defined(node)
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            keep.append("\n".join(lines[start - 1:node.end_lineno]))
    if "from __future__ import annotations" not in imports and len(needs) < sum(
            isinstance(x, ast.ImportFrom) and (x.module or "").startswith("tndiag")
            for x in tree.body):
        raise CompileError(f"kernel module {name} imports tndiag names for annotations "
                           "without `from __future__ import annotations`")
    return KernelText(name, tuple(imports), tuple(dict.fromkeys(needs)), frozenset(names),
                      "\n\n\n".join(keep))


def module_source(module: ModuleType) -> str:
    """A kernel module's text without its docstring, imports and ``__all__``.

    Raises:
        CompileError: when the module imports anything the exported code cannot have.

    >>> "def run_native(" in module_source(kernels)
    True
    """
    return kernel_text(module.__name__).text


def _ordered(names: List[str]) -> List[KernelText]:
    """The kernel modules ``names`` and those they need, each after what it needs."""
    done: Dict[str, KernelText] = {}

    def visit(name: str) -> None:
        if name not in done:
            found = kernel_text(name)
            for need in found.needs:
                visit(need)
            done[name] = found
    for name in names:
        visit(name)
    return list(done.values())


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


def modules_text(names: List[str]) -> str:
    """The imports and text of the kernel modules ``names`` and of those they need, each
    once, after what it needs, in one namespace (for a module that starts with ``from
    __future__ import annotations``, as the exported one does).

    Raises:
        CompileError: when a module cannot be exported, or two define the same name.

    >>> modules_text(["tndiag.backends.routes.fold"]).startswith("from typing import")
    True
    """
    texts = _ordered(names)
    owner: Dict[str, str] = {}
    for t in texts:
        for defined in t.names:
            if owner.setdefault(defined, t.module) != t.module:
                raise CompileError(f"kernel modules {owner[defined]} and {t.module} both "
                                   f"define {defined!r}; exported code shares one namespace")
    imports = dict.fromkeys(i for t in texts for i in t.imports if "__future__" not in i)
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(t.text for t in texts)


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
    >>> expr, "run_native(_R0, [_x0, _x2, _x1])" in text
    ('_p0(X, W, True)', True)
    """
    w = _Writer()
    expr = _call(program, args, "True", w)
    return "\n".join(w.constants) + "\n\n\n" + "\n\n\n".join(w.functions), expr
