"""``to_text(diagram)``: write a diagram in the text language, the exact inverse of ``parse``.

Needs only the IR (no lark). The text has ``index`` lines (a pattern ``o`` size that the
parser infers is left out), declarations in the order tensors first appear, and output
statements. Terms of a :class:`~tndiag.ir.Sum` whose declarations agree share one output
statement; a term that needs other declarations starts a new group (``Y[...] += ...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Axis, Diagram, Graph, Kind, Size, Sum, Tensor
from tndiag.syntax.sizes import NAME_RE, infer_sizes, unprintable_part

__all__ = ["to_text", "TEXT_FORMS", "TextForm"]

_WIDTH = 96


def to_text(diagram: Diagram) -> str:
    """The text form of ``diagram``; ``parse(to_text(d)) == d`` for every valid diagram.

    Args:
        diagram: a :class:`~tndiag.ir.Graph` or :class:`~tndiag.ir.Sum` (it should pass
            :func:`tndiag.verify`; the text of an invalid diagram does not parse back).

    Returns:
        The ``.tnd`` text, ending with a newline.

    Raises:
        InvalidArgumentError: if something cannot be written: a name that is not an
            identifier (or a tensor called ``index``), a size symbol that is not a
            positive-integer symbol, a constant that is not an int or a finite float.

    >>> from tndiag import ops
    >>> print(to_text(ops.conv((2, 3, 8), (4, 3, 3), stride=2)), end="")
    index n: 2, ci: 3, i1: 8, k1: 3, co: 4
    X : input [n, ci, i1]
    P1 = pattern(i1 -> o1, k1; stride=2)
    W : parameter [co, ci, k1]
    Y[n, co, o1] = X * P1 * W
    """
    if isinstance(diagram, Sum):
        terms, is_sum = tuple(diagram.terms), True
    elif isinstance(diagram, Graph):
        terms, is_sum = (diagram,), False
    else:
        raise InvalidArgumentError(f"to_text expects a Graph or a Sum, got "
                                   f"{type(diagram).__name__}")
    if not terms:
        raise InvalidArgumentError("a Sum needs at least one term to be written as text")
    infos = [_TermInfo.of(term) for term in terms]
    name = _output_name(terms)
    env = _Env()
    lines: List[str] = []
    for n, group in enumerate(_groups(infos)):
        lines += env.declare(group)
        op = "+=" if n > 0 or (is_sum and len(terms) == 1) else "="
        products = [env.product(info.graph) for info in group]
        lines.append(_output_line(name, group[0].graph.output, op, products))
    return "\n".join(lines) + "\n"


# -- what one term needs declared ---------------------------------------------------------
@dataclass
class _TermInfo:
    """A term with its tensors' declaration heads and its index sizes, by name."""

    graph: Graph
    heads: Dict[str, tuple] = field(default_factory=dict)
    sizes: Dict[str, Size] = field(default_factory=dict)

    @staticmethod
    def of(graph: Graph) -> "_TermInfo":
        info = _TermInfo(graph)
        for t in graph.tensors:
            head = _head(t)
            if info.heads.setdefault(t.name, head) != head:
                raise InvalidArgumentError(
                    f"tensor {t.name!r} occurs twice in one term with different kinds or "
                    "attributes; such a graph fails verify and has no text form")
        for axis in (*(a for t in graph.tensors for a in t.axes), *graph.output):
            for ix in axis:
                _check_name(ix.name, "index")
                _check_size(ix.size, ix.name)
                if info.sizes.setdefault(ix.name, ix.size) != ix.size:
                    raise InvalidArgumentError(
                        f"index {ix.name!r} has sizes {info.sizes[ix.name]} and {ix.size} in "
                        "one term; such a graph fails verify and has no text form")
        return info

    def agrees(self, other: "_TermInfo") -> bool:
        """Whether ``other`` can share this term's declarations and output statement."""
        return (self.graph.output == other.graph.output
                and all(other.heads[n] == h for n, h in self.heads.items() if n in other.heads)
                and all(other.sizes[n] == s for n, s in self.sizes.items() if n in other.sizes))


def _groups(infos: Sequence[_TermInfo]) -> List[List[_TermInfo]]:
    groups: List[List[_TermInfo]] = []
    for info in infos:
        if groups and all(member.agrees(info) for member in groups[-1]):
            groups[-1].append(info)
        else:
            groups.append([info])
    return groups


def _head(t: Tensor) -> tuple:
    """Everything a declaration fixes about ``t`` except its legs (a factor may override)."""
    _check_name(t.name, "tensor")
    return (t.kind, *TEXT_FORMS[t.kind].head(t))


def _variable_head(t: Tensor) -> tuple:
    if t.role is None:
        raise InvalidArgumentError(f"variable {t.name!r} has no role")
    return (t.role,)


def _params(t: Tensor, legs: int):
    p = t.params
    if p is None or not all(isinstance(v, int) and not isinstance(v, bool) for v in
                            (p.stride, p.pad_left, p.pad_right, p.dilation)):
        raise InvalidArgumentError(f"{t.kind.value} {t.name!r} needs int parameters, got {p}")
    _check_legs(t, legs)
    return p


def _pattern_head(t: Tensor) -> tuple:
    return (_params(t, 3),)


def _reduced_head(t: Tensor) -> tuple:
    """Parameters, and the summed size O unless the parser would infer exactly it."""
    p = _params(t, 2)
    (i,), (k,) = t.axes
    _check_size(t.out_size, f"O of {t.name}")
    return (p, None if t.out_size == p.output_size(i.size, k.size) else t.out_size)


def _sliced_head(t: Tensor) -> tuple:
    _check_size(t.full_size, f"I of {t.name}")
    if not (isinstance(t.sample, str) and t.sample.isidentifier()):
        raise InvalidArgumentError(f"sliced pattern {t.name!r} needs a sample name (an "
                                   f"identifier), got {t.sample!r}")
    return (_params(t, 3), t.full_size, t.sample)


def _constant_head(t: Tensor) -> tuple:
    ok_float = isinstance(t.value, float) and math.isfinite(t.value)
    if not (ok_float or (isinstance(t.value, int) and not isinstance(t.value, bool))):
        raise InvalidArgumentError(f"constant {t.name!r} must hold an int or a finite "
                                   f"float, got {t.value!r}")
    return (type(t.value), t.value)


def _check_legs(t: Tensor, count: int) -> None:
    if len(t.axes) != count or any(len(axis) != 1 for axis in t.axes):
        raise InvalidArgumentError(f"{t.kind.value} {t.name!r} must have {count} single legs "
                                   f"to be written as text, has {t.axes}")


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or (
            what == "tensor" and name == "index"):
        extra = " other than index" if what == "tensor" else ""
        raise InvalidArgumentError(f"{what} name {name!r} cannot be written as text: expected "
                                   f"an identifier{extra}")


def _check_size(size: object, where: str) -> None:
    problem = unprintable_part(size)  # type: ignore[arg-type]
    if problem is not None:
        raise InvalidArgumentError(f"size {size} of {where} cannot be written as text: {problem}")


# -- printing with the declarations in effect ---------------------------------------------
@dataclass
class _Env:
    """The declarations printed so far, as the parser will hold them."""

    sizes: Dict[str, Size] = field(default_factory=dict)
    tensors: Dict[str, Tuple[tuple, Tuple[Tuple[str, ...], ...], Tensor]] = field(
        default_factory=dict)

    def declare(self, group: Sequence[_TermInfo]) -> List[str]:
        """The ``index`` lines and declarations ``group`` needs, updating the env."""
        sizes = self._explicit_sizes(group)
        lines = _index_lines(sizes)
        self.sizes.update(sizes)
        seen = set()
        for info in group:
            for t in info.graph.tensors:
                known = self.tensors.get(t.name)
                if t.name in seen or (known is not None and known[0] == info.heads[t.name]):
                    continue
                seen.add(t.name)
                self.tensors[t.name] = (info.heads[t.name], _leg_names(t.axes), t)
                lines.append(_declaration(t, info.heads[t.name]))
        return lines

    def _explicit_sizes(self, group: Sequence[_TermInfo]) -> Dict[str, Size]:
        """Index sizes to declare so that the parser resolves every index of ``group``.

        Pattern ``o`` sizes are left to inference (from the patterns of the group's output
        statement, as the parser does) where it gives the right size; others are declared,
        non-inferable ones first, then wrongly inferred ones one at a time.
        """
        declared: Dict[str, Size] = {}
        inferable = {legs[1] for info in group for legs in _pattern_legs(info.graph)}
        while True:
            known = {**self.sizes, **declared}
            missing: Dict[str, Size] = {}
            patterns = [legs for info in group for legs in _pattern_legs(info.graph)]
            for info in group:
                resolved = infer_sizes(known, patterns)
                missing.update({name: size for name, size in info.sizes.items()
                                if name not in resolved or resolved[name] != size})
            if not missing:
                return {name: declared[name] for name in _order(group) if name in declared}
            plain = {name: size for name, size in missing.items() if name not in inferable}
            declared.update(plain or dict([next(iter(missing.items()))]))

    def product(self, graph: Graph) -> str:
        """``X * P1 * W``, with ``T[legs]`` where a factor's legs differ from its declaration."""
        factors = []
        for t in graph.tensors:
            names = _leg_names(t.axes)
            same = self.tensors[t.name][1] == names
            factors.append(t.name if same else f"{t.name}{_legs(t.axes)}")
        return " * ".join(factors) or "1"


def _pattern_legs(graph: Graph):
    return [(t.axes[0][0].name, t.axes[1][0].name, t.axes[2][0].name, t.params)
            for t in graph.tensors if t.kind is Kind.PATTERN]


def _order(group: Sequence[_TermInfo]) -> List[str]:
    """Index names in order of first appearance (tensor legs, then the output)."""
    order: Dict[str, None] = {}
    for info in group:
        order.update(dict.fromkeys(info.sizes))
    return list(order)


def _index_lines(sizes: Dict[str, Size]) -> List[str]:
    lines: List[str] = []
    items: List[str] = []
    for name, size in sizes.items():
        item = f"{name}: {size}"
        if items and len("index " + ", ".join([*items, item])) > _WIDTH:
            lines.append("index " + ", ".join(items))
            items = []
        items.append(item)
    if items:
        lines.append("index " + ", ".join(items))
    return lines


def _leg_names(axes: Sequence[Axis]) -> Tuple[Tuple[str, ...], ...]:
    return tuple(tuple(ix.name for ix in axis) for axis in axes)


def _axis(axis: Axis) -> str:
    if len(axis) == 1:
        return axis[0].name
    return "(" + " ".join(ix.name for ix in axis) + ")"


def _legs(axes: Sequence[Axis]) -> str:
    return "[" + ", ".join(_axis(axis) for axis in axes) + "]"


def _options(t: Tensor, head: tuple) -> str:
    p = t.pattern_params
    parts = []
    if p.stride != 1:
        parts.append(f"stride={p.stride}")
    if p.pad_left != p.pad_right:
        parts.append(f"padding=({p.pad_left}, {p.pad_right})")
    elif p.pad_left:
        parts.append(f"padding={p.pad_left}")
    if p.dilation != 1:
        parts.append(f"dilation={p.dilation}")
    if t.kind is Kind.REDUCED and head[2] is not None:
        parts.append(f"O={head[2]}")
    return "; " + ", ".join(parts) if parts else ""


def _declaration(t: Tensor, head: tuple) -> str:
    """The declaration statement of ``t``."""
    return TEXT_FORMS[t.kind].declaration(t, head)


def _pattern_text(t: Tensor, head: tuple) -> str:
    (i,), (o,), (k,) = t.axes
    return f"{t.name} = pattern({i.name} -> {o.name}, {k.name}{_options(t, head)})"


def _reduced_text(t: Tensor, head: tuple) -> str:
    (i,), (k,) = t.axes
    return f"{t.name} = reduced({i.name}, {k.name}{_options(t, head)})"


def _sliced_text(t: Tensor, head: tuple) -> str:
    (j,), (o,), (k,) = t.axes
    rest = _options(t, head).removeprefix("; ")
    return (f"{t.name} = sliced({j.name} -> {o.name}, {k.name}; I={t.full_size}, "
            f"sample={t.sample}{', ' + rest if rest else ''})")


def _constant_text(t: Tensor, head: tuple) -> str:
    return f"{t.name} = const({t.value!r})" + (f" {_legs(t.axes)}" if t.axes else "")


@dataclass(frozen=True)
class TextForm:
    """How one node kind is written: the attributes its declaration fixes, and the text."""

    head: Callable[[Tensor], tuple]
    declaration: Callable[[Tensor, tuple], str]


#: The text form of each node kind (a test asserts every ``Kind`` has a row).
TEXT_FORMS: Dict[Kind, TextForm] = {
    Kind.VARIABLE: TextForm(_variable_head,
                            lambda t, head: f"{t.name} : {t.role} {_legs(t.axes)}"),
    Kind.PATTERN: TextForm(_pattern_head, _pattern_text),
    Kind.REDUCED: TextForm(_reduced_head, _reduced_text),
    Kind.SLICED: TextForm(_sliced_head, _sliced_text),
    Kind.DELTA: TextForm(lambda t: (), lambda t, head: f"{t.name} = delta {_legs(t.axes)}"),
    Kind.CONSTANT: TextForm(_constant_head, _constant_text),
}


def _output_line(name: str, output: Sequence[Axis], op: str, products: List[str]) -> str:
    """``Y[legs] = a * b + c``, broken after ``*`` or ``+`` where longer than the width."""
    pieces = []
    for n, product in enumerate(products):
        factors = product.split(" * ")
        for m, factor in enumerate(factors):
            last = m == len(factors) - 1
            pieces.append(factor + (" *" if not last else " +" if n < len(products) - 1 else ""))
    lines, current = [], f"{name}{_legs(output)} {op} {pieces[0]}"
    for piece in pieces[1:]:
        if len(current) + 1 + len(piece) > _WIDTH:
            lines.append(current)
            current = "    " + piece
        else:
            current += " " + piece
    return "\n".join([*lines, current])


def _output_name(terms: Sequence[Graph]) -> str:
    """A label for the result that is not a tensor name (``Y`` unless taken)."""
    taken = {t.name for term in terms for t in term.tensors}
    for candidate in ("Y", "Z", "Out"):
        if candidate not in taken:
            return candidate
    n = 0
    while f"Y{n}" in taken:
        n += 1
    return f"Y{n}"
