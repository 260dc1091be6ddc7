"""``to_dot(diagram)``: a pure, deterministic DOT text of a diagram in the paper's style.

Node names are derived from tensor and index names and their order in the diagram (never
from memory addresses), so equal diagrams give identical text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Collection, Dict, List, Tuple

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram, Graph, Index, Kind, Sum, Tensor
from tndiag.render.style import (
    FONT,
    HIGHLIGHT,
    LEG_STYLE,
    PORT_STYLE,
    SAMPLED_STYLE,
    SHADE,
    Html,
    axes_text,
    leg_class,
    node_attrs,
    size_text,
)

__all__ = ["to_dot", "graph_lines", "attrs", "Options"]

_PORT = {0: "i", 1: "o", 2: "k"}


@dataclass(frozen=True)
class Options:
    """Drawing options shared by every part of a picture."""

    sizes: bool = False
    highlight: frozenset = field(default_factory=frozenset)
    #: tensor names drawn inside one shaded region (the paper's mark for a cut sub-network)
    shade: frozenset = field(default_factory=frozenset)
    shade_label: str = ""


def _quote(value: str) -> str:
    if isinstance(value, Html):
        return f"<{value}>"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + text + '"'


def attrs(values: Dict[str, str]) -> str:
    """`` [key="value", ...]`` in insertion order (empty string when there are none).

    >>> attrs({"shape": "box", "label": 'say "hi"'})
    ' [shape="box", label="say \\\\"hi\\\\""]'
    """
    if not values:
        return ""
    return " [" + ", ".join(f"{k}={_quote(v)}" for k, v in values.items()) + "]"


def _node_ids(graph: Graph, prefix: str) -> List[str]:
    """One readable id per tensor; repeated names (X twice in KFC) get ``#2``, ``#3``."""
    seen: Dict[str, int] = {}
    ids = []
    for t in graph.tensors:
        seen[t.name] = seen.get(t.name, 0) + 1
        ids.append(prefix + t.name + ("" if seen[t.name] == 1 else f"#{seen[t.name]}"))
    return ids


def _fused_names(graph: Graph) -> set:
    axes = [a for t in graph.tensors for a in t.axes] + list(graph.output)
    return {ix.name for a in axes if len(a) > 1 for ix in a}


def _leg_label(ix: Index, opts: Options) -> str:
    return f"{ix.name}={size_text(ix.size)}" if opts.sizes else ix.name


def _sampled_names(graph: Graph) -> set:
    """The sampled legs: the ``j`` leg of every sliced pattern."""
    return {t.indices[0].name for t in graph.tensors if t.kind is Kind.SLICED}


def _edge_style(ix: Index, fused: set, opts: Options, sampled: frozenset = frozenset()
                ) -> Dict[str, str]:
    style = dict(LEG_STYLE[leg_class(ix)])
    if ix.name in fused:
        style["penwidth"] = "2.2"
    if ix.name in sampled:
        style.update(SAMPLED_STYLE)
    if ix.name in opts.highlight:
        style.update(color=HIGHLIGHT, fontcolor=HIGHLIGHT, penwidth="3")
    return style


def _port(t: Tensor, position: int) -> Dict[str, str]:
    """Small ``i``/``o``/``k`` marks at a pattern's end of an edge (which leg is which)."""
    if t.kind in (Kind.PATTERN, Kind.REDUCED, Kind.SLICED):
        name = "ik"[position] if t.kind is Kind.REDUCED else _PORT[position]
        return {"label": name}
    return {}


def _endpoints(graph: Graph, ids: List[str]) -> Dict[str, List[Tuple[str, Dict[str, str]]]]:
    """index name -> [(node id, port label attrs)] over tensors in order, then output axes."""
    ends: Dict[str, List[Tuple[str, Dict[str, str]]]] = {}
    for t, node in zip(graph.tensors, ids, strict=True):
        for pos, ix in enumerate(t.indices):
            ends.setdefault(ix.name, []).append((node, _port(t, pos)))
    return ends


def _ref(node: str) -> str:
    """A DOT edge end: ``"X"``, or ``"out":"a0":w`` for a port of the result column."""
    name, sep, port = node.partition("\x00")
    return f"{_quote(name)}:{_quote(port)}:w" if sep else _quote(name)


def _edge(a: Tuple[str, Dict[str, str]], b: Tuple[str, Dict[str, str]],
          style: Dict[str, str]) -> str:
    extra = dict(style)
    if a[1]:
        extra["taillabel"] = a[1]["label"]
    if b[1]:
        extra["headlabel"] = b[1]["label"]
    if "taillabel" in extra or "headlabel" in extra:
        extra.update(PORT_STYLE)
    return f"{_ref(a[0])} -- {_ref(b[0])}{attrs(extra)};"


def _output_nodes(graph: Graph, prefix: str, opts: Options
                  ) -> Tuple[List[str], Dict[str, Tuple[str, Dict[str, str]]]]:
    """The result column on the right: one row per output axis, in the result's order.

    Every open leg ends at its axis's row (port ``a0``, ``a1``, ...), labelled with the index
    name (``(g co)`` for a fused axis; with sizes ``o1=8``).
    """
    if not graph.output:
        return [], {}
    node, rows = f"{prefix}out", []
    where: Dict[str, Tuple[str, Dict[str, str]]] = {}
    for k, axis in enumerate(graph.output):
        text = " ".join(_leg_label(ix, opts) for ix in axis)
        text = text if len(axis) == 1 else f"({text})"
        rows.append(f'<TR><TD PORT="a{k}" ALIGN="LEFT">{html.escape(text)}</TD></TR>')
        for ix in axis:
            where[ix.name] = (f"{node}\x00a{k}", {})
    table = ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" CELLPADDING="1">'
             + "".join(rows) + "</TABLE>")
    extra = {"shape": "plaintext", "fontsize": "11", "fontcolor": "#333333",
             "label": Html(table)}
    return [f"{_quote(node)}{attrs(extra)};"], where


def _single_axis(graph: Graph, ix: Index) -> bool:
    return any(axis == (ix,) for axis in graph.output)


def _index_lines(graph: Graph, ix: Index, ends, out_end, prefix: str, fused: set,
                 opts: Options) -> List[str]:
    sampled = frozenset(_sampled_names(graph))
    style = _edge_style(ix, fused, opts, sampled)
    points = list(ends.get(ix.name, [])) + ([out_end] if out_end else [])
    text = _leg_label(ix, opts) + (" sampled" if ix.name in sampled else "")
    label = {"label": text, "fontsize": "10"}
    if len(points) == 2:
        if out_end is not None and _single_axis(graph, ix):  # the open end names it
            label = {}
        return [_edge(points[0], points[1], {**style, **label})]
    if len(points) == 1:  # a leg on one tensor only, not open: summed over (a ones vector)
        stub = f"{prefix}sum:{ix.name}"
        stub_attrs = {"shape": "circle", "width": "0.1", "fixedsize": "true", "label": "",
                      "tooltip": f"sum over {ix.name}"}
        return [f"{_quote(stub)}{attrs(stub_attrs)};",
                _edge(points[0], (stub, {}), {**style, **label})]
    hub = f"{prefix}ix:{ix.name}"
    hub_attrs = {"shape": "point", "width": "0.09",
                 "color": style.get("color", "black"), "xlabel": _leg_label(ix, opts),
                 "fontsize": "10", "fontcolor": style.get("fontcolor", "black")}
    lines = [f"{_quote(hub)}{attrs(hub_attrs)};"]
    lines += [_edge(p, (hub, {}), style) for p in points]
    return lines


def graph_lines(graph: Graph, prefix: str = "", opts: Options = Options()) -> List[str]:
    """DOT statements (nodes and edges) of one graph; node names start with ``prefix``."""
    ids = _node_ids(graph, prefix)
    lines = [] if graph.tensors else [f'{_quote(prefix + "unit")} [shape=plaintext, label="1"];']
    shaded: List[str] = []
    for t, node in zip(graph.tensors, ids, strict=True):
        extra = node_attrs(t)
        if t.name in opts.highlight:
            extra.update(color=HIGHLIGHT, penwidth="3")
        (shaded if t.name in opts.shade else lines).append(f"{_quote(node)}{attrs(extra)};")
    if shaded:
        lines += [f"subgraph {_quote('cluster_' + prefix + 'shade')} {{",
                  f'  label={_quote(opts.shade_label)}; style="rounded,filled"; '
                  f'fillcolor="{SHADE}"; color="{SHADE}"; fontsize=11;',
                  *("  " + ln for ln in shaded), "}"]
    out_lines, out_ends = _output_nodes(graph, prefix, opts)
    lines += out_lines
    ends = _endpoints(graph, ids)
    fused = _fused_names(graph)
    for ix in graph.indices().values():
        lines += _index_lines(graph, ix, ends, out_ends.get(ix.name), prefix, fused, opts)
    return lines


def result_text(diagram: Diagram, opts: Options) -> str:
    """``result [n, (g co), o1]`` plus the shape when sizes are shown."""
    text = "result " + axes_text(diagram.output)
    if opts.sizes:
        text += " shape (" + ", ".join(size_text(s) for s in diagram.output_shape) + ")"
    return text


def _header(name: str, label: str) -> List[str]:
    return [f"graph {_quote(name)} {{",
            f'  graph [rankdir=LR, fontname="{FONT}", fontsize=12, nodesep=0.3, ranksep=0.45, '
            f'labelloc=b, label={_quote(label)}];',
            f'  node [fontname="{FONT}", fontsize=12];',
            f'  edge [fontname="{FONT}", fontsize=10];']


def sum_lines(diagram: Sum, prefix: str, opts: Options) -> List[str]:
    """Each term of a sum in its own cluster, the clusters joined by ``+`` signs."""
    lines: List[str] = []
    firsts, lasts = [], []
    for k, term in enumerate(diagram.terms):
        p = f"{prefix}s{k}/"
        lines.append(f"subgraph {_quote('cluster_' + p)} {{")
        lines.append(f'  label="term {k + 1}"; style="rounded"; color="#999999";')
        lines += ["  " + ln for ln in graph_lines(term, p, opts)]
        lines.append("}")
        # the '+' sits after every open leg of one term and before every tensor of the next
        firsts.append(_node_ids(term, p) or [f"{p}unit"])
        lasts.append([f"{p}out"] if term.output else firsts[-1])
    for k in range(1, len(firsts)):
        plus = f"{prefix}plus:{k}"
        lines.append(f'{_quote(plus)} [shape=plaintext, label="+", fontsize=28];')
        lines += [f"{_quote(a)} -- {_quote(plus)} [style=invis];" for a in lasts[k - 1]]
        lines += [f"{_quote(plus)} -- {_quote(b)} [style=invis];"
                  for b in dict.fromkeys(firsts[k])]
    return lines


def diagram_lines(diagram: Diagram, prefix: str, opts: Options) -> List[str]:
    """Statements for a graph or a sum."""
    if isinstance(diagram, Sum):
        return sum_lines(diagram, prefix, opts)
    if isinstance(diagram, Graph):
        return graph_lines(diagram, prefix, opts)
    raise InvalidArgumentError(f"diagram must be a Graph or Sum, got {type(diagram).__name__}")


def to_dot(diagram: Diagram, *, sizes: bool = False, highlight: Collection[str] = (),
           name: str = "diagram") -> str:
    """DOT text of a diagram: tensors as nodes, legs as labelled edges, open legs dangling.

    Args:
        diagram: a :class:`~tndiag.ir.Graph` or :class:`~tndiag.ir.Sum`.
        sizes: label each leg with its size too (``i1=8``).
        highlight: tensor and index names drawn in red (what a pass changed).
        name: the DOT graph's name.

    Returns:
        The DOT source; identical for equal diagrams.

    Raises:
        InvalidArgumentError: when ``diagram`` is not a Graph or Sum.

    >>> from tndiag import ops
    >>> text = to_dot(ops.conv((1, 2, 5), (3, 2, 3)))
    >>> text.splitlines()[0], '"X" -- "P1"' in text
    ('graph "diagram" {', True)
    """
    opts = Options(bool(sizes), frozenset(highlight))
    lines = _header(name, result_text(diagram, opts) if isinstance(diagram, (Graph, Sum)) else "")
    lines += ["  " + ln for ln in diagram_lines(diagram, "", opts)]
    lines.append("}")
    return "\n".join(lines) + "\n"
