"""``compile(diagram) -> Program``: einsum equation, lowering per tensor, contraction path."""

from __future__ import annotations

import functools
import string
from typing import Dict, List, Mapping, Sequence, Tuple

from tndiag.codegen.lowering import lowering_for
from tndiag.codegen.program import AnyProgram, Operand, Program, Step, SumProgram
from tndiag.errors import CompileError
from tndiag.ir import Diagram, Graph, Kind, Sum, Tensor, verify

__all__ = ["compile", "compile_graph"]

LETTERS = string.ascii_lowercase + string.ascii_uppercase


def compile(diagram: Diagram, sizes: Mapping[str, int] | None = None) -> AnyProgram:
    """Compile a diagram (concrete, or made concrete by ``sizes``) into a runnable program.

    Compiling an equal diagram again is a dictionary lookup.

    Args:
        diagram: a :class:`~tndiag.ir.Graph` or :class:`~tndiag.ir.Sum`.
        sizes: values for symbolic sizes, e.g. ``{"N": 8, "I1": 32}``.

    Returns:
        A frozen :class:`Program` (or :class:`SumProgram` for a sum).

    Raises:
        CompileError: when sizes remain symbolic.

    >>> from tndiag.ops import conv
    >>> prog = compile(conv((2, 3, 8), (4, 3, 3)))
    >>> prog.equation
    'abc,cde,fbe->afd'
    """
    if sizes:
        diagram = diagram.substitute(dict(sizes))
    return _compile_cached(diagram)


@functools.lru_cache(maxsize=1024)
def _compile_cached(diagram: Diagram) -> AnyProgram:
    verify(diagram)
    if isinstance(diagram, Sum):
        terms = tuple(compile_graph(t) for t in diagram.terms)
        names: Dict[str, Tuple[int, ...]] = {}
        for t in terms:
            for n, s in zip(t.inputs, t.input_shapes):
                names.setdefault(n, s)
        return SumProgram(terms, tuple(names), tuple(names.values()))
    return compile_graph(diagram)


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


def _operands(graph: Graph, letters: _Letters, dense_deltas: set) -> Tuple[List[Operand], float]:
    operands, scale = [], 1.0
    for t in graph.tensors:
        lowering = "dense-delta" if t.name in dense_deltas else lowering_for(t)
        if lowering == "merge":
            continue
        if lowering == "scale":
            scale *= float(t.value)  # type: ignore[arg-type]
            continue
        subs = "".join(letters(ix.name) for ix in t.indices)
        operands.append(Operand(t, subs, tuple(int(ix.size) for ix in t.indices), lowering))
    return operands, scale


def compile_graph(graph: Graph) -> Program:
    """Compile one concrete graph (no caching; use :func:`compile`)."""
    import opt_einsum

    _require_concrete(graph)
    letters = _Letters()
    dense = _merge_deltas(graph, letters)
    operands, scale = _operands(graph, letters, dense)
    out = "".join(letters(ix.name) for ix in graph.output_indices)
    if len(set(out)) != len(out):
        raise CompileError("two output legs are joined by a delta; cannot express as einsum")
    sizes = {ch: size for op in operands for ch, size in zip(op.letters, op.shape)}
    missing = [ch for ch in out if ch not in sizes]
    if missing or not operands:
        raise CompileError("the output has legs that no operand carries; "
                           "add a constant ones tensor to broadcast them")
    equation = ",".join(op.letters for op in operands) + "->" + out
    if len(operands) == 1:
        path, flops, largest = ((0,),), _numel(operands[0].shape), _numel(operands[0].shape)
    else:
        path_list, info = opt_einsum.contract_path(
            equation, *[op.shape for op in operands], shapes=True, optimize="auto-hq")
        path = tuple(tuple(p) for p in path_list)
        flops, largest = int(info.opt_cost), int(info.largest_intermediate)
    steps = _steps([op.letters for op in operands], path, out)
    variables = [op for op in operands if op.lowering == "input"]
    inputs = tuple(dict.fromkeys(op.name for op in variables))
    shapes = {op.name: tuple(int(s) for s in op.tensor.shape) for op in variables}
    return Program(equation, tuple(operands), inputs, tuple(shapes[n] for n in inputs), path,
                   steps, tuple(int(s) for s in graph.output_shape), scale, flops, largest)


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _steps(subscripts: List[str], path, out: str) -> Tuple[Step, ...]:
    """Pairwise (or k-ary) einsum steps following ``path``; the last one yields ``out``."""
    current = list(subscripts)
    steps = []
    for n, positions in enumerate(path):
        positions = tuple(sorted(positions))
        taken = [current[p] for p in positions]
        for p in reversed(positions):
            current.pop(p)
        if n == len(path) - 1:
            result = out
        else:
            keep = set("".join(current)) | set(out)
            result = "".join(dict.fromkeys(ch for ch in "".join(taken) if ch in keep))
        steps.append(Step(positions, ",".join(taken) + "->" + result))
        current.append(result)
    return tuple(steps)
