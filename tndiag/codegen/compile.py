"""``compile(diagram) -> Program``: operands per node kind, structured steps, contraction path.

Compiling an equal diagram again is a dictionary lookup (the plan cache): first keyed by the
diagram itself, then by its canonical form (:func:`tndiag.passes.canonicalize`), so diagrams
that differ only in index or pattern names share one plan.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Dict, Iterable, Mapping, Sequence, Tuple, Union

from tndiag.codegen.engine import lower
from tndiag.codegen.fuse import combine_terms
from tndiag.codegen.lowering import STRUCTURED, lowering_for
from tndiag.codegen.lowerings.window_sum import fold_scale
from tndiag.codegen.program import (
    AnyProgram,
    LoweringKind,
    Operand,
    Program,
    SlicedProgram,
    SumProgram,
)
from tndiag.codegen.rewrite import prelower
from tndiag.codegen.routes import choose_all, with_route
from tndiag.codegen.tuning import get_tuning
from tndiag.errors import CompileError, InvalidArgumentError
from tndiag.ir import Diagram, Graph, Kind, Sum, constant, verify
from tndiag.ir.canonical import canonical_form

__all__ = ["compile", "plan", "compile_graph", "cache_info", "clear_cache", "checked_sizes"]

LETTERS = string.ascii_lowercase + string.ascii_uppercase

_BY_DIAGRAM: Dict[tuple, AnyProgram] = {}
_BY_CANONICAL: Dict[tuple, AnyProgram] = {}
_STATS = {"hits": 0, "canonical_hits": 0, "misses": 0}


def compile(diagram: Diagram, sizes: Mapping[str, int] | None = None, *,
            memory_limit: int | None = None,
            lowerings: Iterable[str] | None = None, tune: bool | None = None,
            route: str | None = None) -> AnyProgram:
    """Compile a diagram (concrete, or made concrete by ``sizes``) into a runnable program.

    Compiling an equal diagram again is a dictionary lookup.

    Args:
        diagram: a :class:`~tndiag.ir.Graph` or :class:`~tndiag.ir.Sum`.
        sizes: values for symbolic sizes, e.g. ``{"N": 8, "I1": 32}``.
        memory_limit: bytes the intermediates may occupy (float32 assumed unless the
            inputs say otherwise at run time); when the plan needs more, one leg is sliced
            and the chunks accumulated (:mod:`tndiag.codegen.bounded`).
        lowerings: structured lowerings allowed (default: all of
            :data:`~tndiag.codegen.lowering.STRUCTURED`); ``()`` forces the dense fallback.
        tune: ``True`` measures the routes of each step on first run and keeps the fastest,
            ``False`` lets the cost model choose; ``None`` follows
            :func:`~tndiag.codegen.tuning.set_tuning` (:mod:`tndiag.codegen.routes`).
        route: force this route (e.g. ``"gemm"``) on every step that offers it.

    Returns:
        A frozen :class:`Program` (:class:`SumProgram` for a sum, ``SlicedProgram`` when
        memory-bounded).

    Raises:
        CompileError: when sizes remain symbolic.
        InvalidArgumentError: for a non-diagram, a size that is not a non-negative int
            (named), an unknown lowering name, a non-positive memory limit, a ``tune`` that
            is not a bool, or a route no step offers.

    >>> from tndiag.ops import conv
    >>> prog = compile(conv((2, 3, 8), (4, 3, 3)))
    >>> [step.label for step in prog.steps]
    ['conv1d']
    >>> compile(conv((2, 3, 8), (4, 3, 3)), lowerings=()).equation
    'abc,cde,fbe->afd'
    """
    _check_diagram(diagram, "compile")
    values = checked_sizes(sizes) if sizes is not None else None
    if values:
        diagram = diagram.substitute(values)
    allowed = _allowed(lowerings)
    mode = _mode(tune)
    if memory_limit is not None:
        from tndiag.codegen.bounded import bounded

        if route is not None:
            raise InvalidArgumentError("route: cannot force a route on a memory-bounded "
                                       "program; compile without memory_limit")
        return bounded(diagram, allowed, memory_limit)
    if route is None and mode == "model":
        return _cached(diagram, allowed)
    return _routed(diagram, allowed, mode, route)


def _mode(tune: object) -> str:
    if tune is None:
        return get_tuning()
    if not isinstance(tune, bool):
        raise InvalidArgumentError(f"tune must be True, False or None, got {tune!r}")
    return "measure" if tune else "model"


_ROUTED: Dict[tuple, AnyProgram] = {}


def _routed(diagram: Diagram, allowed: Tuple[str, ...], mode: str,
            route: str | None) -> AnyProgram:
    """The program planned for tuning ``mode``, with ``route`` forced (cached)."""
    key = (diagram, allowed, mode, route)
    found = _ROUTED.get(key)
    if found is None:
        verify(diagram)
        if isinstance(diagram, Sum):
            found = sum_of(tuple(compile_graph(t, allowed, tuning=mode)
                                 for t in diagram.terms), allowed)
        else:
            found = compile_graph(diagram, allowed, tuning=mode)
        if route is not None:
            found = with_route(found, route)
        _ROUTED[key] = found
    return found


def plan(diagram: Diagram, lowerings: Iterable[str] | None = None) -> AnyProgram:
    """The program of a diagram that may stay symbolic: printable, with cost formulas.

    >>> from tndiag.ops import conv
    >>> p = plan(conv(ndim=1))
    >>> p.flops
    2*C_in*C_out*K1*N*(I1 - K1 + 1)
    >>> [step.label for step in p.steps]
    ['conv1d']
    """
    _check_diagram(diagram, "plan")
    allowed = _allowed(lowerings)
    verify(diagram)
    if isinstance(diagram, Sum):
        return sum_of(tuple(compile_graph(t, allowed, concrete=False)
                                  for t in diagram.terms), allowed)
    return compile_graph(diagram, allowed, concrete=False)


def _check_diagram(diagram: object, what: str) -> None:
    if not isinstance(diagram, (Graph, Sum)):
        raise InvalidArgumentError(f"{what} expects a diagram (a Graph or Sum), got "
                                   f"{type(diagram).__name__}")


def checked_sizes(sizes: object) -> Dict[str, int]:
    """``sizes`` as a dict of symbol name -> non-negative int; the culprit named otherwise.

    >>> checked_sizes({"N": 8})
    {'N': 8}
    """
    if not isinstance(sizes, Mapping):
        raise InvalidArgumentError(f"sizes must be a mapping of symbol names to ints, got "
                                   f"{type(sizes).__name__}")
    checked = {}
    for name, value in sizes.items():
        if not isinstance(name, str):
            raise InvalidArgumentError(f"sizes: the key {name!r} is not a symbol name")
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise InvalidArgumentError(f"sizes[{name!r}] must be an int, got {value!r}")
        if value.__index__() < 0:
            raise InvalidArgumentError(f"sizes[{name!r}] must not be negative, got {value!r}")
        checked[name] = value.__index__()
    return checked


def _allowed(lowerings) -> Tuple[str, ...]:
    if lowerings is None:
        return STRUCTURED
    chosen = tuple(lowerings)
    unknown = [name for name in chosen if name not in STRUCTURED]
    if unknown:
        raise InvalidArgumentError(f"lowerings: unknown name(s) {unknown}; expected a subset "
                                   f"of {list(STRUCTURED)}")
    return chosen


def _cached(diagram: Diagram, allowed: Tuple[str, ...]) -> AnyProgram:
    key = (diagram, allowed)
    found = _BY_DIAGRAM.get(key)
    if found is not None:
        _STATS["hits"] += 1
        return found
    canon = _canonical_key(diagram, allowed)
    found = _BY_CANONICAL.get(canon)
    if found is not None and found.inputs == _inputs_of(diagram):
        _STATS["canonical_hits"] += 1
    else:
        _STATS["misses"] += 1
        found = _compile_uncached(diagram, allowed)
        _BY_CANONICAL[canon] = found
    _BY_DIAGRAM[key] = found
    return found


def _inputs_of(diagram: Diagram) -> Tuple[str, ...]:
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    names = [t.name for g in terms for t in g.tensors if t.kind is Kind.VARIABLE]
    return tuple(dict.fromkeys(names))


def _canonical_key(diagram: Diagram, allowed: Tuple[str, ...]) -> tuple:
    return (canonical_form(diagram), allowed)


def cache_info() -> Dict[str, int]:
    """Plan-cache counters: ``hits``, ``canonical_hits``, ``misses`` and ``size``.

    >>> clear_cache(); from tndiag.ops import conv
    >>> _ = compile(conv((1, 1, 4), (1, 1, 2))); _ = compile(conv((1, 1, 4), (1, 1, 2)))
    >>> cache_info()["hits"], cache_info()["misses"]
    (1, 1)
    """
    return dict(_STATS, size=len(_BY_DIAGRAM))


def clear_cache() -> None:
    """Forget every compiled plan (and reset the counters)."""
    _BY_DIAGRAM.clear()
    _BY_CANONICAL.clear()
    _ROUTED.clear()
    _STATS.update(hits=0, canonical_hits=0, misses=0)


def _compile_uncached(diagram: Diagram, allowed) -> AnyProgram:
    verify(diagram)
    if isinstance(diagram, Sum):
        return sum_of(tuple(compile_graph(t, allowed) for t in diagram.terms), allowed)
    return compile_graph(diagram, allowed)


def sum_of(terms: Tuple[Union[Program, SlicedProgram], ...],
           allowed: Tuple[str, ...]) -> AnyProgram:
    """The terms' programs added; a bias fused into its kernel or a broadcast term viewed
    (:mod:`tndiag.codegen.fuse`) when every term is a plain :class:`Program` (memory-bounded
    terms are added as they are). Inputs keep the order of the terms."""
    names: Dict[str, Tuple] = {}
    for t in terms:
        for n, s in zip(t.inputs, t.input_shapes):
            names.setdefault(n, s)
    plain = [t for t in terms if isinstance(t, Program)]
    if len(plain) < len(terms):
        return SumProgram(terms, tuple(names), tuple(names.values()))
    combined = combine_terms(plain, allowed)
    if len(combined) == 1:
        return dataclasses.replace(combined[0], inputs=tuple(names),
                                   input_shapes=tuple(names.values()))
    return SumProgram(tuple(combined), tuple(names), tuple(names.values()))


def _require_concrete(graph: Graph) -> None:
    symbols = graph.free_symbols()
    if symbols:
        names = ", ".join(sorted(s.name for s in symbols))
        raise CompileError(f"cannot compile a diagram with symbolic sizes ({names}); "
                           f"pass sizes={{...}} with a value for each")


class _Letters:
    """Union-find over index names (δ merges) plus a letter for each class."""

    def __init__(self) -> None:
        self.parent: Dict[str, str] = {}
        self.letter: Dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, names: Sequence[str]) -> None:
        roots = [self.find(n) for n in names]
        for r in roots[1:]:
            self.parent[r] = roots[0]

    def __call__(self, name: str) -> str:
        root = self.find(name)
        if root not in self.letter:
            if len(self.letter) == len(LETTERS):
                raise CompileError(f"the diagram has more than {len(LETTERS)} distinct "
                                   "indices; einsum cannot express it")
            self.letter[root] = LETTERS[len(self.letter)]
        return self.letter[root]


def _merge_deltas(graph: Graph, letters: _Letters) -> set:
    """Merge δ legs into one letter unless two of them would be open; return dense δ names."""
    out_names = {ix.name for ix in graph.output_indices}
    dense = set()
    for t in graph.tensors:
        if t.kind is not Kind.DELTA:
            continue
        open_roots = {letters.find(n) for n in out_names}
        roots = {letters.find(ix.name) for ix in t.indices}
        if len(roots & open_roots) > 1:
            dense.add(t.name)
        else:
            letters.union([ix.name for ix in t.indices])
    return dense


def _operands(graph: Graph, letters: _Letters, dense_deltas: set):
    operands, scale = [], 1.0
    for t in graph.tensors:
        lowering = LoweringKind.DENSE_DELTA if t.name in dense_deltas else lowering_for(t)
        if lowering is LoweringKind.MERGE:
            continue
        if lowering is LoweringKind.SCALE:
            scale *= float(t.value)  # type: ignore[arg-type]
            continue
        subs = "".join(letters(ix.name) for ix in t.indices)
        operands.append(Operand(t, subs, tuple(ix.size for ix in t.indices), lowering))
    return operands, scale


def _uncarried_deltas(graph: Graph, letters: _Letters, dense: set, operands: list, scale,
                      out: str):
    """The factor of merged δs whose legs no operand carries: a ones vector when one leg is
    open, else the δ's size (a trace); an empty product becomes the scalar operand 1."""
    carried = {ch for op in operands for ch in op.letters}
    seen = set()
    for t in graph.tensors:
        if t.kind is not Kind.DELTA or t.name in dense:
            continue
        ch = letters(t.indices[0].name)
        if ch in carried or ch in seen:
            continue
        seen.add(ch)
        ix = t.indices[0]
        if ch in out:
            ones = constant(f"{t.name}_ones", 1, [ix])
            operands.append(Operand(ones, ch, (ix.size,), LoweringKind.FILL))
        else:
            scale = scale * ix.size
    if not operands:
        operands.append(Operand(constant("one", 1), "", (), LoweringKind.FILL))
    return operands, scale


def compile_graph(graph: Graph, allowed: Tuple[str, ...] = STRUCTURED,
                  concrete: bool = True, tuning: str = "model") -> Program:
    """Compile one graph without caching (use :func:`compile`); symbolic when not ``concrete``;
    ``tuning`` is the mode its routes are chosen for (:func:`tndiag.codegen.routes.choose`)."""
    if concrete:
        _require_concrete(graph)
    graph, rewrites = prelower(graph, allowed)
    letters = _Letters()
    dense = _merge_deltas(graph, letters)
    operands, scale = _operands(graph, letters, dense)
    out = "".join(letters(ix.name) for ix in graph.output_indices)
    operands, scale = _uncarried_deltas(graph, letters, dense, operands, scale, out)
    if len(set(out)) != len(out):
        raise CompileError("two output legs are joined by a delta; cannot express as einsum")
    carried = {ch for op in operands for ch in op.letters}
    if not operands or any(ch not in carried for ch in out):
        raise CompileError("the output has legs that no operand carries; "
                           "add a constant ones tensor to broadcast them")
    steps, operands, extra_scale, (flops, largest, peak) = lower(operands, out, allowed)
    steps = choose_all(steps, tuning)
    steps, scale = fold_scale(steps, len(operands), scale * extra_scale)
    equation = ",".join(op.letters for op in operands) + "->" + out
    variables = [op for op in operands if op.lowering is LoweringKind.INPUT]
    inputs = tuple(dict.fromkeys(op.name for op in variables))
    shapes = {op.name: tuple(op.tensor.shape) for op in variables}
    samples = {t.sample: (t.indices[0].size,) for t in graph.tensors
               if t.kind is Kind.SLICED and t.sample}  # kept positions, after the variables
    shapes.update(samples)
    inputs += tuple(samples)
    return Program(equation, tuple(operands), inputs, tuple(shapes[n] for n in inputs),
                   tuple(s.positions for s in steps), tuple(steps),
                   tuple(graph.output_shape), scale, flops, largest, peak,
                   rewrites=rewrites, samples=tuple(samples))
