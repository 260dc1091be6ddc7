"""Merge parallel legs (docs/method.md §4.5): legs always adjacent in one axis fuse into one."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rewrite_checks import apply, assert_same_value, run_checked

from tndiag import ops
from tndiag.ir import Graph, Index, constant, delta, variable

n, a, b, c, d = Index("n", 2), Index("a", 3), Index("b", 4), Index("c", 2), Index("d", 5)


def fired(result):
    return [(e.rule, e.indices) for t in result.traces for e in t.fired]


def test_golden_three_legs_in_two_steps():
    g = Graph.of([variable("X", [n, (a, b, c)]), variable("W", [(a, b, c), d])], [n, d])
    res = run_checked(g, "merge-parallel-legs")
    assert fired(res) == [("merge-parallel-legs", ("a", "b")),
                          ("merge-parallel-legs", ("a_b", "c"))]
    abc = Index("a_b_c", 24)
    assert res.diagram == Graph.of([variable("X", [n, abc]), variable("W", [abc, d])], [n, d])
    assert_same_value(g, res.diagram)


def test_golden_output_and_constant():
    g = Graph.of([variable("X", [(a, b), n]), constant("s", 0.5, [(a, b)])], [(a, b)])
    out = apply("merge-parallel-legs", g)
    ab = Index("a_b", 12)
    assert out == Graph.of([variable("X", [ab, n]), constant("s", 0.5, [ab])], [ab])
    assert_same_value(g, out)


@pytest.mark.parametrize("g", [
    Graph.of([variable("X", [n, (a, b)]), variable("W", [(b, a), d])], [n]),   # order differs
    Graph.of([variable("X", [n, (a, b)]), variable("W", [a, b])], [n]),        # split axes
    Graph.of([variable("X", [n, (a, b)]), variable("W", [a])], [n]),           # b missing
    Graph.of([variable("X", [n, (a, b)])], [a, n]),                            # output: a only
    Graph.of([variable("X", [n, (a, b)]), delta("D", [a, Index("e", 3)]),
              variable("Y", [Index("e", 3), b])], [n]),                        # on a δ
    ops.conv((2, 3, 8, 8), (4, 3, 3, 3)),                                      # plain conv
])
def test_does_not_fire(g):
    assert apply("merge-parallel-legs", g) == g


def test_sum_keeps_output():
    """Inside a sum the output legs are shared by every term, so they do not merge."""
    g = ops.conv((2, 3, 6), (3, 1, 3), groups=3, bias=True)
    res = run_checked(g, "merge-parallel-legs")
    assert res.diagram == g
    (event,) = res.traces[0].events  # the bias term B[(g co)] alone could merge (g co)
    assert (event.status, event.tensors, event.indices) == ("skipped", (), ("g", "co"))
    assert "output" in event.detail


@given(sizes=st.lists(st.integers(1, 3), min_size=4, max_size=4),
       order=st.permutations(range(3)), split=st.integers(1, 3))
def test_preserves_value(sizes, order, split):
    idx = [Index(f"a{j}", s) for j, s in enumerate(sizes)]
    perm = [idx[j] for j in order]
    y_axes = [idx[3], tuple(perm[:split])] + ([tuple(perm[split:])] if split < 3 else [])
    g = Graph.of([variable("X", [tuple(idx[:3]), idx[3]]), variable("Y", y_axes)], [idx[3]])
    out = run_checked(g, "merge-parallel-legs").diagram
    assert_same_value(g, out)
