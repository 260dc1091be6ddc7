"""Assemble parsed statements into the IR, in file order, checking names and sizes.

Declarations (index sizes and tensors) stay in effect for later statements; after an output
statement a name may be declared again for the terms that follow (a new *group*). Each term
of an output statement becomes a :class:`~tndiag.ir.Graph`; pattern ``o`` sizes and reduced
summed sizes not given are inferred. Invariant violations (``tndiag.verify``) become
:class:`~tndiag.errors.DiagramSyntaxError` pointing at the offending declaration or term.
"""

from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Sequence, Set, Tuple

from tndiag.errors import DiagramSyntaxError, VerifyError
from tndiag.ir import Diagram, Graph, Index, Kind, Size, Sum, Tensor, verify
from tndiag.syntax.errors import UnusedTensorWarning, syntax_error
from tndiag.syntax.sizes import PatternLegs, infer_sizes
from tndiag.syntax.statements import (
    Declaration,
    Factor,
    IndexSizes,
    Legs,
    Output,
    Pos,
    Ref,
    Statement,
)

__all__ = ["build"]


def build(statements: Sequence[Statement], text: str) -> Diagram:
    """The diagram described by ``statements`` (parsed from ``text``, used for errors)."""
    scope = _Scope(text)
    for statement in statements:
        scope.add(statement)
    return scope.result()


class _Scope:
    """Declarations in effect, the group they belong to, and the terms built so far."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.group = 0
        self.sizes: Dict[str, Tuple[Size, Pos, int]] = {}
        self.tensors: Dict[str, Tuple[Declaration, int]] = {}
        self.first: Optional[Output] = None
        self.is_sum = False
        self.terms: List[Tuple[Graph, Pos, Tuple[Pos, ...]]] = []
        self.declared: List[Declaration] = []
        self.used: Set[int] = set()

    def error(self, message: str, pos: Pos) -> DiagramSyntaxError:
        return syntax_error(self.text, message, pos.line, pos.column)

    # -- declarations --------------------------------------------------------------------
    def add(self, statement: Statement) -> None:
        if isinstance(statement, IndexSizes):
            self.declare_sizes(statement.refs)
        elif isinstance(statement, Declaration):
            self.declare_sizes(_refs(statement.legs))
            self.declare_tensor(statement)
        else:
            self.add_output(statement)

    def declare_sizes(self, refs) -> None:
        for ref in refs:
            if ref.size is None:
                continue
            known = self.sizes.get(ref.name)
            if known is not None and known[2] == self.group and known[0] != ref.size:
                raise self.error(f"size conflict: index {ref.name!r} has size {known[0]} (line "
                                 f"{known[1].line}) and {ref.size} here", ref.pos)
            if known is None or known[2] != self.group:
                self.sizes[ref.name] = (ref.size, ref.pos, self.group)

    def declare_tensor(self, decl: Declaration) -> None:
        if decl.name == "index":
            raise self.error("'index' is reserved and cannot name a tensor", decl.pos)
        known = self.tensors.get(decl.name)
        if known is not None and known[1] == self.group:
            raise self.error(f"duplicate name: tensor {decl.name!r} is already declared at "
                             f"line {known[0].pos.line}", decl.pos)
        self.tensors[decl.name] = (decl, self.group)
        self.declared.append(decl)

    # -- output statements ---------------------------------------------------------------
    def add_output(self, out: Output) -> None:
        first = self.first
        if first is not None and not out.add:
            raise self.error(f"the diagram is already defined at line {first.pos.line}; "
                             f"add terms with '{first.name}[...] += ...'", out.pos)
        if first is not None and out.name != first.name:
            raise self.error(f"this adds terms to {out.name!r}, but the diagram is "
                             f"{first.name!r} (line {first.pos.line})", out.pos)
        self.first = first or out
        self.is_sum = self.is_sum or out.add or len(out.terms) > 1
        self.declare_sizes(_refs(out.legs))
        for term in out.terms:
            for factor in term.factors:
                self.declare_sizes(_refs(factor.legs or ()))
        placed = [[self.place(f) for f in term.factors] for term in out.terms]
        patterns = self.patterns([p for these in placed for p in these])
        for term, these in zip(out.terms, placed, strict=True):
            sizes = self.resolve(these, out.legs, patterns)
            tensors = tuple(_tensor(decl, _axes(legs, sizes)) for decl, legs, _ in these)
            graph = Graph(tensors, _axes(out.legs, sizes))
            self.terms.append((graph, term.pos, tuple(pos for _, _, pos in these)))
        self.group += 1

    def place(self, factor: Factor) -> Tuple[Declaration, Legs, Pos]:
        known = self.tensors.get(factor.name)
        if known is None:
            raise self.error(f"unknown tensor {factor.name!r}; declare it before the output "
                             f"statement (declared: {', '.join(self.tensors) or 'none'})",
                             factor.pos)
        decl = known[0]
        self.used.add(id(decl))
        if factor.legs is None:
            return decl, decl.legs, decl.pos
        return decl, factor.legs, factor.pos

    @staticmethod
    def patterns(placed) -> List[PatternLegs]:
        """The legs of every pattern among ``placed`` (those of one output statement)."""
        found = []
        for decl, legs, _ in placed:
            if decl.kind is Kind.PATTERN and _is_three_single(legs):
                (i,), (o,), (k,) = legs
                found.append((i.name, o.name, k.name, decl.params))
        return found

    def resolve(self, placed, output: Legs, patterns: List[PatternLegs]) -> Dict[str, Size]:
        """Sizes of every index of one term: declared, else inferred from a pattern of the
        same output statement."""
        explicit = {name: size for name, (size, _, _) in self.sizes.items()}
        sizes = infer_sizes(explicit, patterns)
        refs = [*(r for _, legs, _ in placed for r in _refs(legs)), *_refs(output)]
        missing = [ref for ref in refs if ref.name not in sizes]
        if missing:  # blame an index nothing could infer, at its first use in the text
            inferable = {o for _, o, _, _ in patterns}
            causes = [ref for ref in missing if ref.name not in inferable] or missing
            ref = min(causes, key=lambda r: (r.pos.line, r.pos.column))
            raise self.error(f"unknown index {ref.name!r}: give its size with "
                             f"'index {ref.name}: SIZE' or '{ref.name}: SIZE' at a leg", ref.pos)
        self.check_fits(placed, sizes)
        return sizes

    def check_fits(self, placed, sizes: Dict[str, Size]) -> None:
        """A pattern's dilated kernel must fit its padded input (as the functional API says)."""
        for decl, legs, at in placed:
            if decl.kind not in (Kind.PATTERN, Kind.REDUCED) or decl.params is None:
                continue
            if len(legs) not in (2, 3) or any(len(axis) != 1 for axis in legs):
                continue
            I, K = sizes[legs[0][0].name], sizes[legs[-1][0].name]
            p = decl.params
            O = p.output_size(I, K)
            if isinstance(O, int) and O < 1:
                raise self.error(
                    f"pattern {decl.name!r}: kernel size {K} (dilation {p.dilation}) is larger "
                    f"than the padded input size {I} + {p.pad_left} + {p.pad_right}; expected "
                    f"{p.dilation}*({K}-1)+1 <= {I + p.pad_left + p.pad_right}", at)

    # -- result --------------------------------------------------------------------------
    def result(self) -> Diagram:
        if self.first is None:
            raise self.error("no output statement: end the diagram with a line like "
                             "'Y[n, o1] = X * P1 * W'", Pos(_last_line(self.text), 1))
        graphs = tuple(graph for graph, _, _ in self.terms)
        diagram = Sum(graphs) if self.is_sum else graphs[0]
        try:
            verify(diagram)
        except VerifyError as exc:
            raise self.blame(exc) from None
        self.warn_unused()
        return diagram

    def warn_unused(self) -> None:
        for decl in self.declared:
            if id(decl) not in self.used:
                warnings.warn(f"line {decl.pos.line}: tensor {decl.name!r} is declared but no "
                              "term uses it", UnusedTensorWarning, stacklevel=5)

    def blame(self, exc: VerifyError) -> DiagramSyntaxError:
        """The error for a failed :func:`verify`, at the first tensor or term that fails."""
        for graph, pos, tensor_positions in self.terms:
            for tensor, at in zip(graph.tensors, tensor_positions, strict=True):
                problem = _problem(Graph((tensor,), ()))
                if problem is not None:
                    return self.error(problem, at)
            problem = _problem(graph)
            if problem is not None:
                return self.error(problem, pos)
        graphs = tuple(graph for graph, _, _ in self.terms)
        for n in range(1, len(graphs)):
            problem = _problem(Sum(graphs[:n + 1]))
            if problem is not None:
                return self.error(problem, self.terms[n][1])
        return self.error(str(exc), self.terms[0][1])


def _problem(diagram: Diagram) -> Optional[str]:
    try:
        verify(diagram)
    except VerifyError as exc:
        return str(exc)
    return None


def _refs(legs: Legs) -> Tuple[Ref, ...]:
    return tuple(ref for axis in legs for ref in axis)


def _is_three_single(legs: Legs) -> bool:
    return len(legs) == 3 and all(len(axis) == 1 for axis in legs)


def _axes(legs: Legs, sizes: Dict[str, Size]):
    return tuple(tuple(Index(ref.name, sizes[ref.name]) for ref in axis) for axis in legs)


def _tensor(decl: Declaration, axes) -> Tensor:
    """The tensor ``decl`` declares, with legs ``axes`` (the reduced summed size inferred)."""
    out_size = decl.out_size
    if decl.kind is Kind.REDUCED and out_size is None and decl.params is not None and \
            len(axes) == 2 and all(len(axis) == 1 for axis in axes):
        out_size = decl.params.output_size(axes[0][0].size, axes[1][0].size)
    return Tensor(decl.name, decl.kind, axes, role=decl.role, params=decl.params,
                  value=decl.value, out_size=out_size, full_size=decl.full_size,
                  sample=decl.sample)


def _last_line(text: str) -> int:
    return text.count("\n") + 1
