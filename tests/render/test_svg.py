"""``to_svg``: the SVG parses as XML and shows the expected nodes, labels and glyphs."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tndiag import RenderError, ops, run_pipeline
from tndiag.ir import Graph, Index, delta, variable
from tndiag.render import run_dot, to_svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str):
    """(node titles, edge titles, all text) of an SVG drawn by graphviz."""
    root = ET.fromstring(svg)
    nodes, edges = set(), set()
    for group in root.iterfind(".//svg:g", NS):
        title = group.find("svg:title", NS)
        if title is None:
            continue
        if group.get("class") == "node":
            nodes.add(title.text)
        elif group.get("class") == "edge":
            edges.add(title.text)
    texts = [t.text for t in root.iterfind(".//svg:text", NS) if t.text]
    return nodes, edges, texts


def test_conv_svg_has_tensors_patterns_and_leg_labels():
    graph = ops.conv((2, 4, 9, 8), (6, 2, 3, 3), stride=2, padding=1, groups=2)
    nodes, edges, texts = parse(to_svg(graph))
    assert {"X", "W", "P1", "P2", "ix:g", "out"} <= nodes
    assert "X--P1" in edges and "P1--W" in edges and "W--ix:g" in edges
    assert texts.count("Π") == 2 and texts.count("S=2 P=1,1 D=1") == 2
    assert {"n", "ci", "co", "i1", "o1", "k1", "g", "(g co)"} <= set(texts)
    assert "input [n, (g ci), i1, i2]" in texts and "parameter [(g co), ci, k1, k2]" in texts


def test_sizes_on_request():
    _, _, texts = parse(to_svg(ops.conv((2, 3, 11), (4, 3, 3)), sizes=True))
    assert {"n=2", "ci=3", "i1=11", "o1=9", "k1=3", "co=4"} <= set(texts)


def test_sum_terms_and_plus():
    nodes, _, texts = parse(to_svg(ops.conv(ndim=1, bias=True)))
    assert {"s0/X", "s0/W", "s1/B", "s1/one", "plus:1"} <= nodes
    assert "+" in texts and "term 1" in texts and "term 2" in texts


def test_delta_is_drawn_without_text():
    a, b = Index("a", 2), Index("b", 2)
    g = Graph.of([variable("A", [a]), delta("D", [a, b])], [b])
    root = ET.fromstring(to_svg(g))
    node = next(gr for gr in root.iterfind(".//svg:g", NS)
                if gr.get("class") == "node" and gr.find("svg:title", NS).text == "D")
    assert node.find(".//svg:text", NS) is None
    assert node.find(".//svg:ellipse", NS).get("fill") == "black"


def _shell():
    from IPython.core.interactiveshell import InteractiveShell

    from tndiag.render.jupyter import register

    shell = InteractiveShell.instance()
    register(shell)
    return shell


def test_jupyter_shows_diagrams_results_and_programs():
    import tndiag

    shell = _shell()
    data, _ = shell.display_formatter.format(ops.conv((1, 2, 5), (3, 2, 3)))
    assert parse(data["image/svg+xml"])[0] >= {"X", "W", "P1"}
    assert data["text/plain"].startswith("Graph: result [n, co, o1]")
    data, _ = shell.display_formatter.format(ops.conv(ndim=1, bias=True))
    assert "s1/B" in parse(data["image/svg+xml"])[0]
    data, _ = shell.display_formatter.format(run_pipeline(ops.conv(ndim=1), "vjp{wrt=W}"))
    assert {"f0/W", "f1/V"} <= parse(data["image/svg+xml"])[0]
    program = tndiag.compile(ops.conv((1, 2, 5), (3, 2, 3)))
    data, _ = shell.display_formatter.format(program)
    assert data["text/html"].startswith("<pre>equation:") and "-&gt;" in data["text/html"]


def test_jupyter_without_dot_warns_once_and_shows_text(monkeypatch):
    import tndiag.render.jupyter as jupyter

    shell = _shell()
    monkeypatch.setattr("tndiag.render.svg.shutil.which", lambda name: None)
    monkeypatch.setattr(jupyter, "_warned", False)
    with pytest.warns(RuntimeWarning, match="cannot draw diagrams here") as seen:
        first, _ = shell.display_formatter.format(ops.conv(ndim=1))
        second, _ = shell.display_formatter.format(ops.conv(ndim=2))
    assert len(seen) == 1
    assert "image/svg+xml" not in first and first["text/plain"].startswith("Graph:")
    assert "image/svg+xml" not in second


def test_ir_does_not_import_the_renderer():
    import tndiag.ir.graph as graph

    assert "render" not in Path(graph.__file__).read_text().replace("docs/rendering", "")
    assert not hasattr(graph.Graph, "_repr_svg_") and not hasattr(graph.Sum, "_repr_svg_")


def test_trace_strip_is_one_row_of_frames():
    result = run_pipeline(ops.conv(ndim=1), "vjp{wrt=X},identity")
    svg = to_svg(result)
    nodes, _, texts = parse(svg)
    assert {"f0/X", "f1/V", "a1:arrow", "a2:arrow"} <= nodes and "f1/X" not in nodes
    assert "D0: result [n, co, o1]" in texts and "D1: result [n, ci, i1]" in texts
    assert "1. vjp{wrt=X} ⟶" in texts and "2. identity: no change" in texts
    root = ET.fromstring(svg)
    boxes = {}
    for group in root.iterfind(".//svg:g", NS):
        title = group.find("svg:title", NS)
        if group.get("class") == "cluster" and title.text in ("cluster_f0/", "cluster_f1/"):
            xs = [float(v) for v in group.find("svg:path", NS).get("d").replace("C", " ")
                  .replace("M", " ").replace(",", " ").split()[0::2]]
            boxes[title.text] = (min(xs), max(xs))
    assert boxes["cluster_f0/"][1] < boxes["cluster_f1/"][0]  # D1 lies right of D0


def test_open_legs_listed_top_down_in_output_order():
    root = ET.fromstring(to_svg(ops.conv((2, 4, 9, 8), (6, 2, 3, 3), groups=2)))
    out = next(gr for gr in root.iterfind(".//svg:g", NS)
               if gr.get("class") == "node" and gr.find("svg:title", NS).text == "out")
    rows = [(float(t.get("y")), t.text) for t in out.iterfind(".//svg:text", NS)]
    assert [text for _, text in sorted(rows)] == ["n", "(g co)", "o1", "o2"]


def test_unknown_format_and_bad_dot_raise_render_error():
    with pytest.raises(RenderError, match="unknown output format"):
        run_dot("graph {}", "bmp")
    with pytest.raises(RenderError, match="graphviz 'dot' failed"):
        run_dot("graph { a -- }")


def test_missing_dot_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("tndiag.render.svg.shutil.which", lambda name: None)
    with pytest.raises(RenderError, match="graphviz 'dot' program was not found"):
        to_svg(ops.conv(ndim=1))


def test_png_output():
    assert run_dot("graph { a -- b }", "png")[:8] == b"\x89PNG\r\n\x1a\n"
