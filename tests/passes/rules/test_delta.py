"""δ pruning (docs/method.md §4.4): duplicates, renaming, traces."""

from hypothesis import given
from hypothesis import strategies as st
from rewrite_checks import apply, assert_same_value, run_checked

from tndiag.ir import Graph, Index, constant, delta, variable

a, b, c, d = Index("a", 3), Index("b", 3), Index("c", 3), Index("e", 2)


def fired(result):
    return [(e.rule, e.tensors) for t in result.traces for e in t.fired]


def test_golden_rename_keeps_open_leg():
    g = Graph.of([variable("X", [a, d]), delta("D", [a, b]), variable("Y", [b, d])], [b])
    res = run_checked(g, "delta-pruning")
    assert fired(res) == [("delta-rename", ("D",))]
    assert res.diagram == Graph.of([variable("X", [b, d]), variable("Y", [b, d])], [b])
    assert_same_value(g, res.diagram)


def test_golden_rename_prefers_variable_leg():
    g = Graph.of([delta("D", [b, a]), variable("X", [a, d]), constant("one", 1.0, [b])], [d])
    out = apply("delta-pruning", g)
    assert out == Graph.of([variable("X", [a, d]), constant("one", 1.0, [a])], [d])
    assert_same_value(g, out)


def test_golden_hyperedge_delta():
    g = Graph.of([variable("X", [a]), variable("Y", [b]), variable("Z", [c]),
                  delta("D", [a, b, c])], [])
    out = apply("delta-pruning", g)
    assert out == Graph.of([variable("X", [a]), variable("Y", [a]), variable("Z", [a])], [])
    assert_same_value(g, out)


def test_golden_duplicate_then_rename():
    g = Graph.of([variable("X", [a]), delta("D", [a, b]), delta("E", [b, a, c]),
                  variable("Y", [c])], [])
    res = run_checked(g, "delta-pruning")
    assert fired(res) == [("delta-duplicate", ("D", "E")), ("delta-rename", ("E",))]
    assert res.diagram == Graph.of([variable("X", [a]), variable("Y", [a])], [])
    assert_same_value(g, res.diagram)


def test_golden_trace():
    g = Graph.of([variable("X", [d]), delta("D", [a, b])], [d])
    res = run_checked(g, "delta-pruning")
    assert fired(res) == [("delta-trace", ("D",))]
    assert res.diagram == Graph.of([variable("X", [d]), constant("D_trace", 3)], [d])
    assert_same_value(g, res.diagram)


def test_symbolic_trace_is_reported():
    s, t = Index("s", "S"), Index("t", "S")
    g = Graph.of([variable("X", [d]), delta("D", [s, t])], [d])
    res = run_checked(g, "delta-pruning")
    assert res.diagram == g
    (event,) = res.traces[0].events
    assert event.status == "skipped" and "symbolic" in event.detail


def test_golden_partial_trace_becomes_ones():
    g = Graph.of([variable("X", [d]), delta("D", [a, b])], [a, d])
    out = run_checked(g, "delta-pruning").diagram
    assert out == Graph.of([variable("X", [d]), constant("D_ones", 1, [a])], [a, d])
    assert_same_value(g, out)


def test_does_not_fire_with_two_open_legs():
    g = Graph.of([variable("X", [a]), delta("D", [a, b])], [a, b])
    assert apply("delta-pruning", g) == g


def test_does_not_fire_when_a_tensor_carries_two_legs():
    """X[a, b]·δ(a, b) is a trace of X: renaming would put one index on X twice."""
    g = Graph.of([variable("X", [a, b]), delta("D", [a, b])], [])
    assert apply("delta-pruning", g) == g


@given(legs=st.lists(st.sampled_from("abcd"), min_size=2, max_size=4, unique=True),
       opened=st.sampled_from(["", "a", "b", "c", "d"]), on_x=st.sets(st.sampled_from("abcd")))
def test_preserves_value(legs, opened, on_x):
    idx = {name: Index(name, 3) for name in "abcd"}
    tensors = [variable("X", [idx[n] for n in sorted(on_x)] + [d]),
               delta("D", [idx[n] for n in legs])]
    if opened and opened not in legs and opened not in on_x:
        opened = ""
    g = Graph.of(tensors, [idx[opened], d] if opened else [d])
    out = run_checked(g, "delta-pruning").diagram
    assert_same_value(g, out)
