"""``to_dot``: golden DOT text per corpus diagram, determinism, and structure against the IR.

Regenerate the golden files with ``TNDIAG_UPDATE_GOLDEN=1 pytest tests/render/test_dot.py``.
"""

import os
import re
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.corpus import IDS, build
from tests.syntax.diagrams import diagrams as random_diagrams
from tndiag import InvalidArgumentError, ops, run_pipeline
from tndiag.ir import Graph, Index, Kind, Role, Sum, constant, delta, variable
from tndiag.render import to_dot
from tndiag.render.style import KIND_STYLE, LEG_STYLE, ROLE_STYLE, leg_class

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TNDIAG_UPDATE_GOLDEN") == "1"

_NODE = re.compile(r'^\s*"([^"]+)" \[(.*)\];$')
_END = r'"([^"]+)"(?::"([^"]+)":w)?'
_EDGE = re.compile(rf'^\s*{_END} -- {_END}( \[(.*)\])?;$')


def parse_dot(text):
    """Nodes (id -> attribute text) and edges (a, b, attribute text) of our DOT output.

    An edge end at a port of the result column (``"out":"a1":w``) reads as ``out:a1``.
    """
    nodes, edges = {}, []
    for line in text.splitlines():
        m = _EDGE.match(line)
        if m:
            a = m.group(1) + (":" + m.group(2) if m.group(2) else "")
            b = m.group(3) + (":" + m.group(4) if m.group(4) else "")
            edges.append((a, b, m.group(6) or ""))
            continue
        m = _NODE.match(line)
        if m:
            nodes[m.group(1)] = m.group(2)
    return nodes, edges


def check_structure(graph: Graph, text: str, prefix: str = "", sizes: bool = False) -> None:
    """Every tensor is a node; the legs of each index connect exactly its tensors (+ output)."""
    nodes, edges = parse_dot(text)
    edges = [e for e in edges if e[0].startswith(prefix) and e[1].startswith(prefix)]
    ids = []
    count = defaultdict(int)
    for t in graph.tensors:
        count[t.name] += 1
        ids.append(prefix + t.name + ("" if count[t.name] == 1 else f"#{count[t.name]}"))
    assert all(i in nodes for i in ids)
    for ix in graph.indices().values():
        label = f"{ix.name}={ix.size}".replace(" ", "") if sizes else ix.name
        outs = [k for k, a in enumerate(graph.output) if ix in a]
        expected = sorted([i for t, i in zip(graph.tensors, ids, strict=True) if ix in t.indices]
                          + [f"{prefix}out:a{k}" for k in outs])
        hub = f"{prefix}ix:{ix.name}"
        if len(expected) > 2:
            assert hub in nodes and f'xlabel="{label}"' in nodes[hub]
            got = sorted(a for a, b, _ in edges if b == hub)
        elif len(expected) == 1:
            stub = f"{prefix}sum:{ix.name}"
            assert stub in nodes
            got = sorted(a for a, b, _ in edges if b == stub)
        elif outs and graph.output[outs[0]] == (ix,):  # named by its row of the result column
            assert f'PORT="a{outs[0]}" ALIGN="LEFT">{label}<' in nodes[f"{prefix}out"]
            got = sorted(next([a, b] for a, b, _ in edges if f"{prefix}out:a{outs[0]}" in (a, b)))
        else:
            got = sorted(next([a, b] for a, b, attr in edges if f'label="{label}"' in attr))
        assert got == expected, ix.name
    if graph.output:  # the result column lists the axes in order
        cells = re.findall(r'PORT="a(\d+)"', nodes[f"{prefix}out"])
        assert cells == [str(k) for k in range(len(graph.output))]


@pytest.mark.parametrize("name", IDS)
def test_golden(name):
    text = to_dot(build(name))
    path = GOLDEN / f"{name}.dot"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing golden file {path}; run with TNDIAG_UPDATE_GOLDEN=1")
        path.write_text(text)
    assert text == path.read_text()


def test_no_stale_golden_files():
    assert {p.stem for p in GOLDEN.glob("*.dot")} - set(IDS) - {"conv2d-sizes-highlight"} == set()


def test_golden_sizes_and_highlight():
    text = to_dot(ops.conv((2, 4, 9, 8), (6, 2, 3, 3), stride=2, padding=1, groups=2),
                  sizes=True, highlight={"P1", "o1"})
    path = GOLDEN / "conv2d-sizes-highlight.dot"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", IDS)
def test_structure_matches_ir(name):
    diagram = build(name)
    text = to_dot(diagram)
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    for k, term in enumerate(terms):
        check_structure(term, text, f"s{k}/" if isinstance(diagram, Sum) else "")


@pytest.mark.parametrize("name", IDS)
def test_deterministic_and_equal_for_equal_diagrams(name):
    assert to_dot(build(name)) == to_dot(build(name))


def test_every_kind_and_role_has_a_style():
    assert set(KIND_STYLE) == set(Kind)
    assert set(ROLE_STYLE) == set(Role)
    assert {leg_class(Index(n, 2)) for n in ("n", "g", "h", "ci", "n2")} <= set(LEG_STYLE)


def test_pattern_glyph_shows_hyper_parameters():
    text = to_dot(ops.conv((1, 1, 9), (1, 1, 3), stride=2, padding=((1, 2),), dilation=2))
    assert "<B>Π</B>" in text and "S=2 P=1,2 D=2" in text


def test_delta_is_a_dot_and_hyperedge_has_a_junction():
    n, a, b = Index("n", 3), Index("a", 2), Index("b", 2)
    g = Graph.of([variable("A", [n, a]), variable("B", [n, b], "parameter"),
                  variable("C", [n], "vector"), delta("D", [a, b])], [n])
    nodes, edges = parse_dot(to_dot(g))
    assert 'shape="point"' in nodes["D"] and 'fillcolor="black"' in nodes["D"]
    assert sorted(x for x, y, _ in edges if y == "ix:n") == ["A", "B", "C", "out:a0"]
    assert 'style="dashed"' in [attr for x, y, attr in edges if y == "ix:n"][0]


def test_roles_are_visible_and_distinct():
    n = Index("n", 2)
    g = Graph.of([variable("X", [n]), variable("W", [n], "parameter"),
                  variable("V", [n], "vector"), constant("c", 0.5)], [n])
    nodes, _ = parse_dot(to_dot(g))
    fills = {nodes[x].split('fillcolor="')[1].split('"')[0] for x in "XWV"}
    assert len(fills) == 3
    assert "input [n]" in nodes["X"] and "parameter [n]" in nodes["W"]
    assert 'label="1/2"' in nodes["c"]


@pytest.mark.parametrize("value, text", [(0.0009765625, "1/1024"), (0.25, "1/4"), (1, "1"),
                                         (2.0, "2"), (1 / 3, "1/3"), (-0.5, "-1/2"),
                                         (0.1234567891, "0.123457")])
def test_constants_print_as_fractions(value, text):
    nodes, _ = parse_dot(to_dot(Graph.of([constant("c", value)], [])))
    assert f'label="{text}"' in nodes["c"]


def test_open_legs_end_in_one_right_column_in_output_order():
    g = ops.conv((2, 4, 9, 8), (6, 2, 3, 3), groups=2)
    text = to_dot(g, sizes=True)
    nodes, edges = parse_dot(text)
    cells = re.findall(r'PORT="a(\d+)" ALIGN="LEFT">([^<]*)<', nodes["out"])
    assert cells == [("0", "n=2"), ("1", "(g=2 co=3)"), ("2", "o1=7"), ("3", "o2=6")]
    assert ("P1", "out:a2", 'headlabel="" ') not in edges  # plain edge, named by the column
    assert next(attr for a, b, attr in edges if b == "out:a2").startswith("taillabel")


def test_pattern_port_letters_are_legible():
    _, edges = parse_dot(to_dot(ops.conv((1, 1, 5), (1, 1, 3))))
    attr = next(attr for a, b, attr in edges if (a, b) == ("X", "P1"))
    size = float(re.search(r'labelfontsize="([\d.]+)"', attr).group(1))
    assert 'headlabel="i"' in attr and size >= 10


def test_fused_output_axis_converges_on_one_labelled_point():
    nodes, edges = parse_dot(to_dot(ops.unfold((1, 2, 5), (3,))))
    assert 'PORT="a1" ALIGN="LEFT">(c k1)<' in nodes["out"]
    assert sorted(x for x, y, _ in edges if y == "out:a1") == ["P1", "X"]
    assert all('penwidth="2.2"' in attr for x, y, attr in edges if y == "out:a1")


def test_summed_leg_gets_a_stub():
    i = Index("i", 4)
    nodes, edges = parse_dot(to_dot(Graph.of([variable("X", [i])], [])))
    assert "sum:i" in nodes and edges == [("X", "sum:i", 'label="i", fontsize="10"')]


def test_sizes_label_legs():
    text = to_dot(ops.conv(ndim=1), sizes=True)
    assert 'label="i1=I1"' in text and "result [n, co, o1] shape" in text


def test_sum_has_clusters_and_plus():
    text = to_dot(ops.conv(ndim=1, bias=True))
    assert 'subgraph "cluster_s0/"' in text and 'subgraph "cluster_s1/"' in text
    assert '"plus:1" [shape=plaintext, label="+"' in text


def test_repeated_tensor_names_get_distinct_nodes():
    n, i, j = Index("n", 2), Index("i", 3), Index("j", 3)
    g = Graph.of([variable("X", [n, i]), variable("X", [n, j])], [i, j])
    nodes, _ = parse_dot(to_dot(g))
    assert "X" in nodes and "X#2" in nodes


def test_rejects_non_diagrams():
    with pytest.raises(InvalidArgumentError, match="Graph or Sum"):
        to_dot("X * W")


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2),
       st.integers(1, 2), st.booleans(), st.booleans())
def test_structure_property(ndim, k, stride, pad, groups, bias, sizes):
    diagram = ops.conv((2, 2 * groups, *[5] * ndim), (2 * groups, 2, *[k] * ndim), stride=stride,
                       padding=pad, groups=groups, bias=bias)
    text = to_dot(diagram, sizes=sizes)
    assert text == to_dot(diagram, sizes=sizes)
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    for n, term in enumerate(terms):
        check_structure(term, text, f"s{n}/" if bias else "", sizes)
    assert text.count("<B>Π</B>") == ndim
    assert text.count(f"S={stride} P={pad},{pad} D=1") == ndim


def test_trace_highlights_the_changed_part():
    from types import SimpleNamespace

    from tndiag.passes.base import Event
    from tndiag.render import trace_to_dot
    from tndiag.render.style import HIGHLIGHT

    before, after = ops.conv((1, 1, 6), (1, 1, 2)), ops.conv((1, 1, 6), (1, 1, 3))
    trace = SimpleNamespace(pass_name="demo", options=(("k", 3),), before=before, after=after,
                            events=(Event("fired", "grow", tensors=("X",)),))
    nodes, edges = parse_dot(trace_to_dot([trace]))
    red = {n for n, attr in nodes.items() if HIGHLIGHT in attr}
    assert red == {"f1/P1", "f1/W", "f1/X"}  # D1 shows what the pass rewrote; D0 stays plain
    red_edges = {(a, b) for a, b, attr in edges if HIGHLIGHT in attr}
    assert ("f1/P1", "f1/out:a2") in red_edges and ("f1/X", "f1/P1") not in red_edges
    assert "1. demo{k=3} ⟶\\n1 rewrite" in nodes["a1:arrow"]


def _frames(text):
    return re.findall(r'subgraph "cluster_(f\d+/)" \{\n\s*label="(D\d+: result [^"]*)"', text)


def test_film_strip_draws_each_diagram_once_and_folds_unchanged_passes():
    from tndiag.render import trace_to_dot

    result = run_pipeline(ops.conv(ndim=1), "identity,vjp{wrt=W,vector=V},identity,simplify")
    text = trace_to_dot(result)
    assert _frames(text) == [("f0/", "D0: result [n, co, o1]"),
                             ("f1/", "D1: result [co, ci, k1]")]
    nodes, edges = parse_dot(text)
    assert nodes["a1:arrow"].count("\\n") == 2  # "1. identity: no change", pass 2, count
    assert "1. identity: no change" in nodes["a1:arrow"]
    assert "2. vjp{wrt=W,vector=V} ⟶" in nodes["a1:arrow"]
    assert "3. identity: no change\\n4. simplify: no change" in nodes["a2:arrow"]
    # one row: frame k's result column -> arrow -> frame k+1's first tensor
    assert ("f0/out", "a1:arrow", "style=invis, weight=5") in edges
    assert ("a1:arrow", "f1/X", "style=invis, weight=5") in edges
    assert ("f1/out", "a2:arrow", "style=invis, weight=5") in edges


def test_derivative_shades_the_cut_sub_network_instead_of_red():
    from tndiag.render import trace_to_dot
    from tndiag.render.style import HIGHLIGHT

    text = trace_to_dot(run_pipeline(ops.conv(ndim=2), "vjp{wrt=W,vector=V}"))
    assert HIGHLIGHT not in text
    shade = text[text.index('subgraph "cluster_f1/shade"'):]
    shade = shade[:shade.index("}")]
    assert 'label="∂ / ∂W"' in shade and 'style="rounded,filled"' in shade
    assert {"f1/X", "f1/P1", "f1/P2"} == set(re.findall(r'^\s*"(f1/[^"]+)" \[', shade, re.M))


def test_trace_needs_traces():
    from tndiag.render import trace_to_dot

    with pytest.raises(InvalidArgumentError, match="pipeline result"):
        trace_to_dot(42)
    with pytest.raises(InvalidArgumentError, match="no traces"):
        trace_to_dot([])


@settings(max_examples=150)
@given(random_diagrams())
def test_structure_property_random_diagrams(diagram):
    """Every node kind, fused legs, hyperedges and sums: the DOT mirrors the IR exactly."""
    text = to_dot(diagram)
    assert text == to_dot(diagram)
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    for n, term in enumerate(terms):
        check_structure(term, text, f"s{n}/" if isinstance(diagram, Sum) else "")


@settings(max_examples=15)
@given(random_diagrams())
def test_graphviz_accepts_random_diagrams(diagram):
    from tndiag.render import run_dot

    assert run_dot(to_dot(diagram, sizes=True), "svg").startswith(b"<?xml")


def test_empty_product_term_is_a_one():
    n = Index("n", 3)
    diagram = Sum((Graph.of([variable("X", [n]), variable("V", [n], "vector")], []),
                   Graph.of([], [])))
    nodes, edges = parse_dot(to_dot(diagram))
    assert nodes["s1/unit"] == 'shape=plaintext, label="1"'
    assert ("plus:1", "s1/unit", "style=invis") in edges
    assert set(nodes) == {"s0/X", "s0/V", "s1/unit", "plus:1"}
