"""``export(diagram_or_program) -> str``: a standalone Python module that needs only torch.

The module holds the einsum equation, the contraction path, the code that builds the index
patterns, one function with typed arguments and shape checks that runs the contraction step
by step, and a docstring with the diagram's text form.

By default (``lowering="window"``, see :mod:`tndiag.codegen.export_plan`) a pattern on the
``i`` leg of a single tensor becomes a zero-padded strided view of that tensor; every other
operand is exported as below, and the steps follow an ``opt_einsum`` path. The structured
steps of a compiled program (native convolution kernels, Gram products) are exported as
their exact einsum form.

| lowering          | exported as |
|-------------------|-------------|
| ``input``         | the argument, reshaped to its flat legs |
| ``dense-pattern`` | ``index_pattern(I, O, K, stride, pad_left, dilation)`` (cached) |
| ``dense-reduced``, ``reduced-matrix`` | ``summed_pattern(I, O, K, ...)`` (counts, no Π) |
| ``dense-delta``   | ``delta_tensor(size, ndim)`` |
| ``sliced-pattern``, ``gather`` | ``sliced_pattern(positions, O, K, ...)`` (kept positions) |
| ``fill``          | ``torch.full(shape, value)`` |

Other lowerings of a pattern, reduced pattern, δ or constant fall back to its dense tensor.
"""

from __future__ import annotations

import keyword
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

from tndiag.codegen.compile import compile
from tndiag.codegen.export_plan import WINDOW_HELPER, TermPlan, plan_term
from tndiag.codegen.program import AnyProgram, Operand, Program, SumProgram
from tndiag.errors import CompileError, InvalidArgumentError
from tndiag.ir import Diagram, Graph, Kind, Sum

__all__ = ["export", "EXPORTERS"]

_HELPERS = {
    "window": WINDOW_HELPER,
    "index_pattern": '''
@functools.lru_cache(maxsize=None)
def index_pattern(I: int, O: int, K: int, stride: int, pad_left: int, dilation: int,
                  device=None, dtype=None) -> torch.Tensor:
    """The index pattern ``P[i, o, k] = 1 if i == o*stride + k*dilation - pad_left else 0``.

    Cached: one tensor per size, hyper-parameters, device and dtype.
    """
    i = torch.arange(I, device=device).view(I, 1, 1)
    o = torch.arange(O, device=device).view(1, O, 1)
    k = torch.arange(K, device=device).view(1, 1, K)
    return (i == o * stride + k * dilation - pad_left).to(dtype or torch.get_default_dtype())
''',
    "summed_pattern": '''
@functools.lru_cache(maxsize=None)
def summed_pattern(I: int, O: int, K: int, stride: int, pad_left: int, dilation: int,
                   device=None, dtype=None) -> torch.Tensor:
    """``sum_o P[i, o, k]`` as an ``[I, K]`` count matrix, without building the pattern P."""
    i = torch.arange(I, device=device).view(I, 1)
    k = torch.arange(K, device=device).view(1, K)
    shifted = i + pad_left - k * dilation  # equals o*stride for the o that hits (i, k)
    hit = (shifted % stride == 0) & (shifted >= 0) & (shifted < O * stride)
    return hit.to(dtype or torch.get_default_dtype())
''',
    "sliced_pattern": '''
def sliced_pattern(positions: torch.Tensor, O: int, K: int, stride: int, pad_left: int,
                   dilation: int, dtype=None) -> torch.Tensor:
    """``P[s[j], o, k]``: the index pattern at the kept input positions ``s`` ([m, O, K])."""
    taps = torch.arange(K, device=positions.device) * dilation
    shifted = positions.view(-1, 1, 1) + pad_left - taps  # = o*stride where P has an entry
    o = torch.arange(O, device=positions.device).view(1, O, 1)
    return (shifted == o * stride).to(dtype or torch.get_default_dtype())
''',
    "delta_tensor": '''
@functools.lru_cache(maxsize=None)
def delta_tensor(size: int, ndim: int, device=None, dtype=None) -> torch.Tensor:
    """The Kronecker delta with ``ndim`` legs of ``size`` (ones on the diagonal)."""
    out = torch.zeros((size,) * ndim, device=device, dtype=dtype)
    idx = torch.arange(size, device=device)
    out[(idx,) * ndim] = 1
    return out
''',
}

_CHECK = '''
def _check(name: str, tensor: torch.Tensor, shape: Tuple[int, ...]) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {list(tensor.shape)}, expected {list(shape)}")
'''


def _pattern_expr(op: Operand) -> Tuple[str, str]:
    p = op.tensor.pattern_params
    I, O, K = op.shape
    args = f"{I}, {O}, {K}, {p.stride}, {p.pad_left}, {p.dilation}"
    return "index_pattern", f"index_pattern({args}, _device, _dtype)"


def _reduced_expr(op: Operand) -> Tuple[str, str]:
    p, t = op.tensor.pattern_params, op.tensor
    I, K = op.shape
    assert t.out_size is not None  # verify() guarantees it for a reduced pattern
    args = f"{I}, {int(t.out_size)}, {K}, {p.stride}, {p.pad_left}, {p.dilation}"
    return "summed_pattern", f"summed_pattern({args}, _device, _dtype)"


def _delta_expr(op: Operand) -> Tuple[str, str]:
    return "delta_tensor", f"delta_tensor({op.shape[0]}, {len(op.shape)}, _device, _dtype)"


def _fill_expr(op: Operand) -> Tuple[str, str]:
    value = float(op.tensor.value)  # type: ignore[arg-type]
    return "", f"torch.full({tuple(op.shape)!r}, {value!r}, device=_device, dtype=_dtype)"


#: Lowering name -> ``(helper needed, expression)`` for a constant operand.
EXPORTERS: Dict[str, Callable[[Operand], Tuple[str, str]]] = {
    "dense-pattern": _pattern_expr,
    "dense-reduced": _reduced_expr,
    "reduced-matrix": _reduced_expr,
    "dense-delta": _delta_expr,
    "fill": _fill_expr,
}

#: Node kind -> the dense exporter used when a lowering has no exporter of its own.
_DENSE_BY_KIND = {Kind.PATTERN: "dense-pattern", Kind.REDUCED: "dense-reduced",
                  Kind.DELTA: "dense-delta", Kind.CONSTANT: "fill"}


def _constant_expr(op: Operand) -> Tuple[str, str]:
    if op.lowering in EXPORTERS:
        return EXPORTERS[op.lowering](op)
    fallback = _DENSE_BY_KIND.get(op.tensor.kind)
    if fallback is None:
        raise CompileError(f"export cannot write lowering {op.lowering!r} of tensor "
                           f"{op.name!r}; expected one of {sorted(EXPORTERS)}")
    return EXPORTERS[fallback](op)


def _arg_names(inputs: Sequence[str]) -> Dict[str, str]:
    """Python argument names for the inputs (keywords and private names get a suffix)."""
    out = {}
    for name in inputs:
        bad = keyword.iskeyword(name) or name.startswith("_") or name == "torch"
        out[name] = f"{name}_" if bad and not name.startswith("_") else (
            f"v{name}" if bad else name)
    return out


def _operand_expr(op: Operand, args: Mapping[str, str]) -> Tuple[str, str]:
    """``(helper needed, expression)`` building one operand of a term."""
    if op.lowering == "input":
        return "", f"{args[op.name]}.reshape({', '.join(map(str, op.shape)) or '()'})"
    if op.tensor.kind is Kind.SLICED:  # built from the kept positions of the call
        p, (_, O, K) = op.tensor.pattern_params, op.shape
        return "sliced_pattern", (f"sliced_pattern({args[str(op.tensor.sample)]}, {O}, {K}, "
                                  f"{p.stride}, {p.pad_left}, {p.dilation}, _dtype)")
    return _constant_expr(op)


def _term_body(program: Program, plan: TermPlan) -> List[str]:
    """Statements computing one term: operands, windows, the contraction steps, the reshape."""
    lines = list(plan.setup)
    stack = list(plan.operands)
    for n, (positions, equation) in enumerate(plan.steps):
        taken = [stack[p] for p in positions]
        for p in sorted(positions, reverse=True):
            stack.pop(p)
        lines.append(f"_t{n} = torch.einsum({equation!r}, {', '.join(taken)})")
        stack.append(f"_t{n}")
    result = stack[-1]
    if program.scale != 1:
        lines.append(f"_t = {result} * {program.scale!r}")
        result = "_t"
    lines.append(f"return {result}.reshape({tuple(program.output_shape)!r})")
    return lines


def _runtime_lines(inputs: Sequence[str], args: Mapping[str, str]) -> List[str]:
    if inputs:
        first = args[inputs[0]]
        return [f"_device, _dtype = {first}.device, {first}.dtype"]
    return ["_device, _dtype = device, dtype or torch.get_default_dtype()"]


def _signature(name: str, inputs: Sequence[str], args: Mapping[str, str]) -> str:
    params = [f"{args[n]}: torch.Tensor" for n in inputs]
    if not inputs:
        params = ["device=None", "dtype=None"]
    return f"def {name}({', '.join(params)}) -> torch.Tensor:"


def _roles(program: AnyProgram) -> Dict[str, str]:
    terms = _terms(program)
    roles = {op.name: op.tensor.role.value if op.tensor.role else "input"
             for t in terms for op in t.operands if op.lowering == "input"}
    roles.update({str(op.tensor.sample): "int64 kept positions" for t in terms
                  for op in t.operands if op.tensor.kind is Kind.SLICED})
    return roles


def _main_function(program: AnyProgram, name: str, args: Mapping[str, str],
                   plans: Sequence[TermPlan]) -> List[str]:
    roles = _roles(program)
    doc = ['    """Evaluate the diagram.', "", "    Args:"]
    doc += [f"        {args[n]}: {roles.get(n, 'input')} tensor of shape {tuple(s)!r}."
            for n, s in zip(program.inputs, program.input_shapes)]
    if not program.inputs:
        doc += ["        device: where to build the result.", "        dtype: its dtype."]
    doc += ["", "    Returns:", f"        A tensor of shape {tuple(program.output_shape)!r}.",
            "", "    Raises:", "        TypeError: when an argument is not a tensor.",
            "        ValueError: when a tensor has the wrong shape.",
            '    """']
    body = [f'_check("{args[n]}", {args[n]}, {tuple(s)!r})'
            for n, s in zip(program.inputs, program.input_shapes)]
    body += _runtime_lines(program.inputs, args)
    if isinstance(program, SumProgram):
        calls = []
        for k, term in enumerate(_terms(program)):
            call_args = ", ".join(["_device", "_dtype"] + [args[n] for n in term.inputs])
            calls.append(f"_term{k}({call_args})")
        body.append("return " + " + ".join(calls))
    else:
        body += _term_body(_terms(program)[0], plans[0])
    return [_signature(name, program.inputs, args), *doc, *("    " + ln for ln in body)]


def _term_functions(program: SumProgram, args: Mapping[str, str],
                    plans: Sequence[TermPlan]) -> List[str]:
    lines: List[str] = []
    for k, term in enumerate(_terms(program)):
        params = ", ".join(["_device", "_dtype"] + [f"{args[n]}: torch.Tensor"
                                                    for n in term.inputs])
        lines += ["", "", f"def _term{k}({params}) -> torch.Tensor:",
                  f'    """Term {k + 1} of the sum: {term.equation}."""']
        lines += ["    " + ln for ln in _term_body(term, plans[k])]
    return lines


def _text_form(diagram: Diagram | None, text: str | None) -> str:
    """The diagram's text form when given (``tndiag.export`` passes ``tndiag.to_text``'s),
    else its repr."""
    if text is not None:
        return text
    if diagram is None:
        return "(not available: exported from a compiled program)"
    return repr(diagram)


def _summary(program: AnyProgram, plans: Sequence[TermPlan]) -> List[str]:
    terms = _terms(program)
    lines = []
    for k, (t, plan) in enumerate(zip(terms, plans)):
        head = f"Term {k + 1}: " if len(terms) > 1 else ""
        lines.append(f"{head}einsum {t.equation}")
        if plan.windows:
            lines.append(f"    index patterns as strided windows: {', '.join(plan.windows)}")
        lines += [f"    contraction path {list(plan.path)}",
                  f"    cost {plan.flops} FLOPs, largest intermediate {plan.largest} elements"]
    return lines


def _terms(program: AnyProgram) -> Tuple[Program, ...]:
    terms = program.terms if isinstance(program, SumProgram) else (program,)
    plain = tuple(t for t in terms if isinstance(t, Program))
    if len(plain) != len(terms):
        raise InvalidArgumentError("a memory-bounded program cannot be exported; export the "
                                   "diagram instead")
    return plain


def _module_doc(program: AnyProgram, diagram: Diagram | None, call: str,
                plans: Sequence[TermPlan], text_form: str | None) -> List[str]:
    text = _text_form(diagram, text_form).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return (['"""Tensor-network program exported by tndiag; needs only torch.', "",
              "Diagram (tndiag text form)::", ""]
            + ["    " + ln if ln else "" for ln in text.splitlines()]
            + ["", *_summary(program, plans), "", f"Call ``{call}``.", '"""'])


def _constants_block(program: AnyProgram, plans: Sequence[TermPlan]) -> List[str]:
    shapes = dict(zip(program.inputs, (tuple(s) for s in program.input_shapes)))
    return [f"EQUATIONS: Tuple[str, ...] = {tuple(t.equation for t in _terms(program))!r}",
            f"PATHS = {tuple(tuple(p.path) for p in plans)!r}",
            f"STEPS = {tuple(tuple(eq for _, eq in p.steps) for p in plans)!r}",
            f"INPUT_SHAPES: Dict[str, Tuple[int, ...]] = {shapes!r}",
            f"OUTPUT_SHAPE = {tuple(program.output_shape)!r}"]


def _as_program(obj: Diagram | AnyProgram, sizes) -> Tuple[AnyProgram, Diagram | None]:
    if isinstance(obj, (Graph, Sum)):
        # the exported source writes einsum steps only: plan with the dense lowerings
        return compile(obj, sizes, lowerings=()), obj.substitute(dict(sizes)) if sizes else obj
    if isinstance(obj, (Program, SumProgram)):
        if sizes:
            raise InvalidArgumentError("sizes only apply to a diagram, not to a compiled program")
        from tndiag.codegen.fuse import unfused

        return unfused(obj), None  # a fused bias or broadcast term exports as its einsums
    raise InvalidArgumentError(f"export expects a Graph, Sum or compiled Program, got "
                               f"{type(obj).__name__}")


def export(diagram_or_program: Diagram | AnyProgram, *, sizes: Mapping[str, int] | None = None,
           name: str = "forward", diagram: Diagram | None = None,
           lowering: str = "window", text: str | None = None) -> str:
    """Python source of a standalone module evaluating the diagram with torch alone.

    :func:`tndiag.export` is this function with ``text`` set to the diagram's text form.

    Args:
        diagram_or_program: a Graph or Sum (compiled here) or a compiled Program/SumProgram.
        sizes: values for symbolic sizes of a diagram (``{"N": 8, ...}``).
        name: name of the exported function.
        diagram: the diagram a given program came from (only for the docstring's text form).
        lowering: ``"window"`` (an index pattern on the ``i`` leg of a single tensor becomes
            a padded strided view of it; the rest are dense) or ``"dense"`` (every pattern a
            dense 0/1 tensor, the compiled program's steps).
        text: the diagram's text form for the module docstring (default: its repr).

    Returns:
        The module's source text; its function ``name`` takes the inputs in program order.

    Raises:
        InvalidArgumentError: for a bad ``name``, ``lowering`` or argument type.
        CompileError: when the diagram cannot be compiled (e.g. sizes still symbolic).

    >>> from tndiag import ops
    >>> source = export(ops.conv((1, 2, 5), (3, 2, 3)))
    >>> namespace = {}
    >>> exec(source, namespace)
    >>> namespace["INPUT_SHAPES"], namespace["STEPS"]
    ({'X': (1, 2, 5), 'W': (3, 2, 3)}, (('abde,fbe->afd',),))
    """
    if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
            or name.startswith("_")):
        raise InvalidArgumentError(f"name must be a public Python identifier, got {name!r}")
    program, graph = _as_program(diagram_or_program, sizes)
    graph = diagram if diagram is not None else graph
    args = _arg_names(program.inputs)
    plans = [plan_term(t, lambda op: _operand_expr(op, args), lowering)
             for t in _terms(program)]
    helpers = set().union(*(p.helpers for p in plans)) | (
        {"window"} if any(p.windows for p in plans) else set())
    main = _main_function(program, name, args, plans)
    terms = _term_functions(program, args, plans) if isinstance(program, SumProgram) else []
    call = f"{name}({', '.join(args[n] for n in program.inputs)})"
    lines = [*_module_doc(program, graph, call, plans, text), "",
             "from __future__ import annotations", "",
             *(["import functools"] if helpers - {"window"} else []),
             "from typing import Dict, Tuple", "", "import torch", "",
             f'__all__ = ["{name}", "EQUATIONS", "PATHS", "INPUT_SHAPES", "OUTPUT_SHAPE"]', "",
             *_constants_block(program, plans)]
    for helper in sorted(helpers):
        lines += ["", _HELPERS[helper].rstrip("\n")]
    lines += ["", _CHECK.rstrip("\n")] + terms + ["", ""] + main
    return "\n".join(lines) + "\n"
