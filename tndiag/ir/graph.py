"""The immutable diagram: :class:`Graph` (one tensor network) and :class:`Sum` (of several)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Iterable, Mapping, Tuple, Union

import sympy

from tndiag.errors import UnknownNameError
from tndiag.ir.nodes import Axis, Index, Tensor, _axes, _axis_str, _prod
from tndiag.ir.sizes import Size, substitute_size

__all__ = ["Graph", "Sum", "Diagram"]


@dataclass(frozen=True)
class Graph:
    """A tensor network: tensors plus the output axes (open legs), frozen and hashable.

    An index name on several tensors is one edge (a hyperedge when on more than two).
    An index in ``output`` is an open leg; indices not in ``output`` are summed.

    >>> from tndiag.ir import variable
    >>> n, i = Index("n", 2), Index("i", 3)
    >>> g = Graph.of([variable("X", [n, i])], [n])
    >>> g.output
    ((n:2,),)
    """

    tensors: Tuple[Tensor, ...]
    output: Tuple[Axis, ...]

    @staticmethod
    def of(tensors: Iterable[Tensor], output) -> "Graph":
        """Build a graph from tensors and output legs (indices or tuples of indices)."""
        return Graph(tuple(tensors), _axes(output))

    # -- lookups -------------------------------------------------------------------------
    @property
    def output_indices(self) -> Tuple[Index, ...]:
        """The open legs, flattened."""
        return tuple(ix for axis in self.output for ix in axis)

    @property
    def output_shape(self) -> Tuple[Size, ...]:
        """Runtime shape of the result (products for fused output axes)."""
        return tuple(_prod(ix.size for ix in axis) for axis in self.output)

    @property
    def names(self) -> Tuple[str, ...]:
        """Tensor names in order."""
        return tuple(t.name for t in self.tensors)

    def occurrences(self, name: str) -> Tuple[Tensor, ...]:
        """Every tensor called ``name`` (a variable may occur several times, e.g. X in KFC)."""
        found = tuple(t for t in self.tensors if t.name == name)
        if not found:
            raise UnknownNameError(f"no tensor named {name!r} in the diagram; "
                                   f"expected one of {sorted(set(self.names))}")
        return found

    def tensor(self, name: str) -> Tensor:
        """The (first) tensor called ``name``; raises :class:`UnknownNameError` if none."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise UnknownNameError(f"no tensor named {name!r} in the diagram; "
                               f"expected one of {list(self.names)}")

    def indices(self) -> Dict[str, Index]:
        """Every index of the diagram by name (tensor legs first, then output)."""
        found: Dict[str, Index] = {}
        for t in self.tensors:
            for ix in t.indices:
                found.setdefault(ix.name, ix)
        for ix in self.output_indices:
            found.setdefault(ix.name, ix)
        return found

    def index(self, name: str) -> Index:
        """The index called ``name``; raises :class:`UnknownNameError` naming the choices."""
        table = self.indices()
        if name not in table:
            raise UnknownNameError(f"no index named {name!r} in the diagram; "
                                   f"expected one of {sorted(table)}")
        return table[name]

    def variables(self) -> Tuple[Tensor, ...]:
        """The user-supplied tensors (every occurrence), in order."""
        from tndiag.ir.nodes import Kind

        return tuple(t for t in self.tensors if t.kind is Kind.VARIABLE)

    def free_symbols(self) -> frozenset:
        """Sympy symbols still appearing in sizes (empty when concrete)."""
        syms = set()
        for ix in self.indices().values():
            if isinstance(ix.size, sympy.Basic):
                syms |= ix.size.free_symbols
        for t in self.tensors:
            for size in (t.out_size, t.full_size):
                if isinstance(size, sympy.Basic):
                    syms |= size.free_symbols
        return frozenset(syms)

    def is_concrete(self) -> bool:
        """Whether every size is an int."""
        return not self.free_symbols()

    # -- rewriting -----------------------------------------------------------------------
    def replace(self, tensors=None, output=None) -> "Graph":
        """A copy with new tensors and/or output."""
        return Graph(tuple(self.tensors if tensors is None else tensors),
                     self.output if output is None else _axes(output))

    def map_indices(self, fn) -> "Graph":
        """Apply ``fn: Index -> Index`` to every leg and output index."""
        def axes(ax):
            return tuple(tuple(fn(ix) for ix in axis) for axis in ax)

        tensors = [t.replace(axes=axes(t.axes)) for t in self.tensors]
        return Graph(tuple(tensors), axes(self.output))

    def substitute(self, values: Mapping[str, int]) -> "Graph":
        """Specialise symbolic sizes: ``values`` maps symbol names to ints.

        >>> from tndiag.ir import variable
        >>> g = Graph.of([variable("X", [Index("n", "N")])], [Index("n", "N")])
        >>> g.substitute({"N": 4}).output
        ((n:4,),)
        """
        g = self.map_indices(lambda ix: Index(ix.name, substitute_size(ix.size, values)))
        tensors = [_substitute_attributes(t, values) for t in g.tensors]
        return g.replace(tensors=tensors)

    def rename_indices(self, mapping: Mapping[str, str]) -> "Graph":
        """Rename indices by name (unlisted names stay)."""
        return self.map_indices(lambda ix: Index(mapping.get(ix.name, ix.name), ix.size))

    def __str__(self) -> str:
        """One tensor per line, then the sizes (what ``print(graph)`` shows).

        >>> from tndiag import ops
        >>> print(ops.conv((8, 3, 5), (4, 3, 3), padding=1))
        Graph: result [n, co, o1], shape (8, 4, 5)
          X   input      [n, ci, i1]
          P1  pattern    [i1, o1, k1]  stride=1, padding=(1, 1), dilation=1
          W   parameter  [co, ci, k1]
          sizes: n=8, ci=3, i1=5, o1=5, k1=3, co=4
        """
        return "\n".join(_lines(self, "Graph"))

    def __repr__(self) -> str:
        body = ", ".join(repr(t) for t in self.tensors)
        out = ", ".join(_axis_str(a) for a in self.output)
        return f"Graph([{body}] -> [{out}])"


@dataclass(frozen=True)
class Sum:
    """A sum of diagrams with the same output (product rule, bias terms).

    >>> from tndiag.ir import variable
    >>> n = Index("n", 2)
    >>> s = Sum((Graph.of([variable("A", [n])], [n]), Graph.of([variable("B", [n])], [n])))
    >>> len(s.terms)
    2
    """

    terms: Tuple[Graph, ...]

    @property
    def output(self) -> Tuple[Axis, ...]:
        """The common output axes (of the first term)."""
        return self.terms[0].output

    @property
    def output_shape(self) -> Tuple[Size, ...]:
        """Runtime shape of the result."""
        return self.terms[0].output_shape

    def substitute(self, values: Mapping[str, int]) -> "Sum":
        """Specialise symbolic sizes in every term."""
        return Sum(tuple(t.substitute(values) for t in self.terms))

    def variables(self) -> Tuple[Tensor, ...]:
        """Distinct variable tensors over all terms, by first occurrence."""
        seen: Dict[str, Tensor] = {}
        for term in self.terms:
            for t in term.variables():
                seen.setdefault(t.name, t)
        return tuple(seen.values())

    def is_concrete(self) -> bool:
        """Whether every term is concrete."""
        return all(t.is_concrete() for t in self.terms)

    def __str__(self) -> str:
        """The terms one after another, each one tensor per line."""
        head = f"Sum of {len(self.terms)} terms: " + _result(self)
        body = [line for k, term in enumerate(self.terms)
                for line in _lines(term, f"term {k + 1}", indent="  ")]
        return "\n".join([head, *body])

    def __repr__(self) -> str:
        return "Sum(" + " + ".join(repr(t) for t in self.terms) + ")"


def _substitute_attributes(t: Tensor, values: Mapping[str, int]) -> Tensor:
    """``t`` with its size attributes (``out_size``, ``full_size``) specialised."""
    changes = {name: substitute_size(size, values)
               for name, size in (("out_size", t.out_size), ("full_size", t.full_size))
               if size is not None}
    return t.replace(**changes) if changes else t


def _result(diagram) -> str:
    axes = ", ".join(ix[0].name if len(ix) == 1 else "(" + " ".join(i.name for i in ix) + ")"
                     for ix in diagram.output)
    shape = ", ".join(str(size) for size in diagram.output_shape)
    return f"result [{axes}], shape ({shape}{',' if len(diagram.output) == 1 else ''})"


def _detail(t: Tensor) -> str:
    if t.params is not None:
        extra = f", O={t.out_size}" if t.out_size is not None else ""
        if t.full_size is not None:
            extra += f", I={t.full_size}, sample={t.sample}"
        return f"{t.params}{extra}"
    if t.value is not None:
        value = Fraction(t.value).limit_denominator(1 << 20)
        exact = not isinstance(t.value, float) or float(value) == t.value
        return f"value={value if exact else t.value}"
    return ""


def _lines(graph: Graph, title: str, indent: str = "") -> list:
    rows = [(t.name, str(t.role) if t.role is not None else t.kind.value,
             "[" + ", ".join(_axis_text(a) for a in t.axes) + "]", _detail(t))
            for t in graph.tensors]
    widths = [max((len(r[c]) for r in rows), default=0) for c in range(3)]
    lines = [f"{indent}{title}: {_result(graph)}"]
    for row in rows:
        cells = [row[c].ljust(widths[c]) for c in range(3)] + [row[3]]
        lines.append(f"{indent}  " + "  ".join(cells).rstrip())
    sizes = ", ".join(f"{name}={ix.size}" for name, ix in graph.indices().items())
    lines.append(f"{indent}  sizes: {sizes or 'none'}")
    return lines


def _axis_text(axis: Axis) -> str:
    return axis[0].name if len(axis) == 1 else "(" + " ".join(ix.name for ix in axis) + ")"


#: Anything passes and codegen accept.
Diagram = Union[Graph, Sum]
