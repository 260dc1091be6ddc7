"""Squeeze (docs/method.md §4.6): summed size-1 legs disappear, runtime shapes stay."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rewrite_checks import apply, assert_same_value, run_checked

from tndiag import ops
from tndiag.ir import Graph, Index, Kind, constant, delta, pattern, variable

n, c, k, h = Index("n", 2), Index("c", 3), Index("k", 1), Index("h", 1)


def fired(result):
    return [(e.rule, e.indices) for t in result.traces for e in t.fired]


def test_golden_fused_and_whole_axes():
    g = Graph.of([variable("X", [n, (c, k)]), variable("W", [k, c])], [n])
    res = run_checked(g, "squeeze")
    assert fired(res) == [("squeeze", ("k",))]
    assert res.diagram == Graph.of([variable("X", [n, (c,)]), variable("W", [(), c])], [n])
    assert res.diagram.tensors[1].shape == (1, 3)
    assert_same_value(g, res.diagram)


def test_golden_delta_and_constant():
    g = Graph.of([variable("X", [n, k]), delta("D", [k, h]), constant("one", 2.0, [h, n])],
                 [n])
    out = apply("squeeze", g)
    assert out == Graph.of([variable("X", [n, ()]), constant("one", 2.0, [(), n])], [n])
    assert_same_value(g, out)


def test_fires_on_1x1_conv_after_dense():
    g = ops.conv((2, 3, 5, 4), (4, 3, 1, 1))
    res = run_checked(g, "dense,delta-pruning,squeeze")
    assert [e.indices for e in res.traces[2].fired] == [("k1",), ("k2",)]
    assert res.diagram.tensor("W").axes[2:] == ((), ())
    assert_same_value(g, res.diagram)


@pytest.mark.parametrize("g", [
    Graph.of([variable("X", [n, k])], [n, k]),                                   # open leg
    Graph.of([variable("X", [Index("i", 3)]), variable("W", [k]),
              pattern("P", Index("i", 3), Index("o", 3), k)], [Index("o", 3)]),  # on a Π
    Graph.of([variable("X", [n, c]), variable("W", [c])], [n]),                  # size 3
])
def test_does_not_fire(g):
    res = run_checked(g, "squeeze")
    assert res.diagram == g and not res.traces[0].events


def test_symbolic_size_is_undecidable():
    m = Index("m", "M")
    res = run_checked(Graph.of([variable("X", [n, m]), variable("W", [m])], [n]), "squeeze")
    (event,) = res.traces[0].events
    assert (event.status, event.indices) == ("skipped", ("m",))
    assert event.detail == "cannot decide 'm' has size 1 (size M) with symbolic sizes"


@given(sizes=st.lists(st.integers(1, 2), min_size=3, max_size=5), seed=st.integers(0, 3))
def test_preserves_value(sizes, seed):
    idx = [Index(f"a{j}", s) for j, s in enumerate(sizes)]
    x_axes = [(idx[0], idx[1])] + [(ix,) for ix in idx[2:]]
    g = Graph.of([variable("X", x_axes), variable("Y", [idx[1], (idx[-1], idx[0])])],
                 [idx[2]])
    out = run_checked(g, "squeeze").diagram
    assert not any(ix.size == 1 for t in out.tensors for ix in t.indices
                   if ix not in out.output_indices)
    assert all(t.kind is Kind.VARIABLE for t in out.tensors)
    assert_same_value(g, out, seed=seed)
