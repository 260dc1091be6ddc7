"""``export(diagram_or_program) -> str``: the compiled plan as a standalone module (torch only).

The exported module runs the *same* plan as the compiled program: the backend's exporter
(:data:`~tndiag.codegen.program.BACKEND_EXPORTS`, found by name like the backend itself)
writes each step as a call of the very kernel the backend runs (torch's ``F.conv*d`` and
``convolution_backward``, strided views, window sums, Gram products, scatters), with the step's
recipe as a literal, after the text of those kernels. Sums and memory-bounded programs export
too, and so do programs with kept positions (tensor dropout's sliced patterns): their
function takes each vector of kept positions as an argument after the tensors, as the
compiled program does (int64, checked to lie on its leg). The module docstring gives the
diagram's text form and the steps; the function checks its arguments' types and shapes.
"""

from __future__ import annotations

import ast
import importlib
import keyword
from typing import Dict, List, Mapping, Sequence, Tuple

from tndiag.codegen.compile import compile
from tndiag.codegen.program import (
    BACKEND_EXPORTS,
    AnyProgram,
    Program,
    SlicedProgram,
    SumProgram,
    sample_inputs,
)
from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram, Graph, Sum

__all__ = ["export", "full_sizes", "LOWERING_MODES"]

#: ``lowering`` values: the compiled program's structured plan, or dense Π and plain einsums.
LOWERING_MODES = ("window", "dense")

_CHECK = '''
def _check(name: str, tensor: torch.Tensor, shape: Tuple[int, ...]) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {list(tensor.shape)}, expected {list(shape)}")
'''

_CHECK_POSITIONS = '''
def _check_positions(name: str, tensor: torch.Tensor, shape: Tuple[int, ...],
                     full: int) -> None:
    _check(name, tensor, shape)
    if tensor.dtype != torch.int64:
        raise TypeError(f"{name} holds kept positions and must be torch.int64, got "
                        f"{tensor.dtype}")
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= full):
        raise ValueError(f"{name}: kept positions must lie in [0, {full}), got "
                         f"{int(tensor.min())}..{int(tensor.max())}")
'''


def _arg_names(inputs: Sequence[str]) -> Dict[str, str]:
    """Python argument names for the inputs (keywords and private names get a suffix)."""
    out = {}
    for name in inputs:
        bad = keyword.iskeyword(name) or name.startswith("_") or name == "torch"
        out[name] = f"{name}_" if bad and not name.startswith("_") else (
            f"v{name}" if bad else name)
    return out


def _plain(program: AnyProgram) -> Tuple[Program, ...]:
    """The plain programs of the terms (the unsliced program of a memory-bounded one)."""
    terms = program.terms if isinstance(program, SumProgram) else (program,)
    return tuple(t.whole if isinstance(t, SlicedProgram) else t for t in terms)


def _summary(program: AnyProgram) -> List[str]:
    terms = _plain(program)
    lines = []
    if isinstance(program, SlicedProgram):
        lines.append(f"memory-bounded: index {program.leg!r} sliced per element size")
    for k, t in enumerate(terms):
        head = f"Term {k + 1}: " if len(terms) > 1 else ""
        lines.append(f"{head}einsum {t.equation}")
        lines += [f"    {s.label}: {s.equation}" for s in t.steps]
        lines.append(f"    cost {t.flops} FLOPs, peak {t.peak_memory} elements")
    return lines


def _module_doc(program: AnyProgram, diagram: Diagram | None, call: str,
                text_form: str | None) -> List[str]:
    text = text_form if text_form is not None else (
        repr(diagram) if diagram is not None else "(not available: exported from a program)")
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return (['"""Tensor-network program exported by tndiag; needs only torch.', "",
             "Diagram (tndiag text form)::", ""]
            + ["    " + ln if ln else "" for ln in text.splitlines()]
            + ["", *_summary(program), "", f"Call ``{call}``.", '"""'])


def full_sizes(program: AnyProgram) -> Dict[str, int]:
    """Input name -> the unsliced size of the leg whose kept positions it holds.

    >>> from tndiag.functional.dropout import approximate_program
    >>> full_sizes(approximate_program("i1", 2, 0.5, (2, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1))
    {'keep_i1': 8}
    """
    found: Dict[str, int] = {}
    for part in _plain(program):
        for op in part.operands:
            if op.tensor.sample in part.samples and op.tensor.full_size is not None:
                found[str(op.tensor.sample)] = int(op.tensor.full_size)
    return found


def _arg_lines(program: AnyProgram, args: Mapping[str, str]) -> Tuple[List[str], List[str]]:
    """The docstring's ``Args`` entries and the argument checks."""
    full, samples = full_sizes(program), sample_inputs(program)
    doc, body = [], []
    for n, shape in zip(program.inputs, program.input_shapes):
        a, shape = args[n], tuple(shape)
        if n in samples:
            doc.append(f"        {a}: kept positions (int64, shape {shape!r}) of a leg of "
                       f"size {full[n]}.")
            body.append(f'_check_positions("{a}", {a}, {shape!r}, {full[n]})')
        else:
            doc.append(f"        {a}: tensor of shape {shape!r}.")
            body.append(f'_check("{a}", {a}, {shape!r})')
    return doc, body


def _main_function(program: AnyProgram, name: str, args: Mapping[str, str],
                   expr: str) -> List[str]:
    params = [f"{args[n]}: torch.Tensor" for n in program.inputs]
    entries, body = _arg_lines(program, args)
    doc = ['    """Evaluate the diagram.', ""]
    if program.inputs:
        doc += ["    Args:", *entries, ""]
    doc += ["    Returns:", f"        A tensor of shape {tuple(program.output_shape)!r}.", "",
            "    Raises:", "        TypeError: when an argument is not a tensor (kept "
            "positions: not int64).",
            "        ValueError: when a tensor has the wrong shape (kept positions: off "
            "their leg).", '    """']
    return [f"def {name}({', '.join(params)}) -> torch.Tensor:", *doc,
            *("    " + ln for ln in body + [f"return {expr}"])]


def _as_program(obj: Diagram | AnyProgram, sizes, lowering: str):
    if lowering not in LOWERING_MODES:
        raise InvalidArgumentError(f"lowering must be one of {list(LOWERING_MODES)}, "
                                   f"got {lowering!r}")
    if isinstance(obj, (Graph, Sum)):
        lowerings = () if lowering == "dense" else None
        return compile(obj, sizes, lowerings=lowerings), (
            obj.substitute(dict(sizes)) if sizes else obj)
    if isinstance(obj, (Program, SumProgram, SlicedProgram)):
        if sizes:
            raise InvalidArgumentError("sizes only apply to a diagram, not to a compiled program")
        if not obj.is_concrete:
            raise InvalidArgumentError("the program has symbolic sizes; compile the diagram "
                                       "with sizes={...} first")
        return obj, None
    raise InvalidArgumentError(f"export expects a Graph, Sum or compiled program, got "
                               f"{type(obj).__name__}")


def export(diagram_or_program: Diagram | AnyProgram, *, sizes: Mapping[str, int] | None = None,
           name: str = "forward", diagram: Diagram | None = None,
           lowering: str = "window", text: str | None = None) -> str:
    """Python source of a standalone module running the compiled plan with torch alone.

    :func:`tndiag.export` is this function with ``text`` set to the diagram's text form.

    Args:
        diagram_or_program: a Graph or Sum (compiled here) or a compiled program (plain, sum
            or memory-bounded).
        sizes: values for symbolic sizes of a diagram (``{"N": 8, ...}``).
        name: name of the exported function.
        diagram: the diagram a given program came from (only for the docstring's text form).
        lowering: ``"window"`` (the compiled program with every structured lowering) or
            ``"dense"`` (dense Π and plain einsum steps, ``compile(..., lowerings=())``).
        text: the diagram's text form for the module docstring (default: its repr).

    Returns:
        The module's source text; its function ``name`` takes the inputs in program order
        (a program with kept positions: each int64 position vector after the tensors). Each
        step runs along the route the program chose for it.

    Raises:
        InvalidArgumentError: for a bad ``name`` (also one that clashes with a name the
            module defines or imports itself, e.g. ``"torch"``), ``lowering`` or argument type.
        CompileError: when the diagram cannot be compiled (e.g. sizes still symbolic).

    >>> from tndiag import ops
    >>> namespace = {}
    >>> exec(export(ops.conv((1, 2, 5), (3, 2, 3))), namespace)
    >>> namespace["INPUT_SHAPES"], namespace["STEPS"]
    ({'X': (1, 2, 5), 'W': (3, 2, 3)}, (('abc,fbe,cde->afd',),))
    """
    if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
            or name.startswith("_")):
        raise InvalidArgumentError(f"name must be a public Python identifier, got {name!r}")
    program, graph = _as_program(diagram_or_program, sizes, lowering)
    graph = diagram if diagram is not None else graph
    backend = importlib.import_module(BACKEND_EXPORTS["torch"])
    args = _arg_names(program.inputs)
    definitions, expr = backend.program_functions(program, args)
    call = f"{name}({', '.join(args[n] for n in program.inputs)})"
    plain = _plain(program)
    shapes = dict(zip(program.inputs, (tuple(s) for s in program.input_shapes)))
    lines = [*_module_doc(program, graph, call, text), "",
             "from __future__ import annotations", "",
             "from typing import Dict, Tuple", "", "import torch",
             "import torch.nn.functional as F", "",
             f'__all__ = ["{name}", "EQUATIONS", "STEPS", "INPUT_SHAPES", "OUTPUT_SHAPE"]', "",
             f"EQUATIONS: Tuple[str, ...] = {tuple(t.equation for t in plain)!r}",
             f"STEPS = {tuple(tuple(s.equation for s in t.steps) for t in plain)!r}",
             f"INPUT_SHAPES: Dict[str, Tuple[int, ...]] = {shapes!r}",
             f"OUTPUT_SHAPE = {tuple(program.output_shape)!r}", "", "",
             "# the backend's runtime kernels", "", backend.kernel_source(program), "", "",
             "# the plan", "", definitions, "", "", _CHECK.strip("\n"), "", "",
             *([_CHECK_POSITIONS.strip("\n"), "", ""] if sample_inputs(program) else []),
             *_main_function(program, name, args, expr)]
    source = "\n".join(lines) + "\n"
    _check_name(source, name)
    return source


def _check_name(source: str, name: str) -> None:
    """``name`` must not clash with a name the exported module defines or imports itself."""
    defined: List[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined += [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined += [t.id for t in targets if isinstance(t, ast.Name)]
    if defined.count(name) > 1:
        taken = sorted({n for n in defined if not n.startswith("_") and n != "annotations"})
        raise InvalidArgumentError(f"name {name!r} clashes with a name the exported module "
                                   f"uses itself; choose another (taken: {', '.join(taken)})")
