"""Text-in/text-out goldens: each simplification pass on a small diagram in the .tnd language."""

import pytest
from rewrite_checks import assert_same_value, run_checked

import tndiag

GOLDENS = {
    "dense": (
        """index n: 2, ci: 3, co: 8, i1: 16
        X : input [n, ci, i1]
        W : parameter [co, ci, k1: 4]
        P1 = pattern(i1 -> o1, k1; stride=4)
        Y[n, co, o1] = X * P1 * W
        """,
        """index n: 2, ci: 3, i1_o: 4, i1_k: 4, o1: 4, k1: 4, co: 8
        X : input [n, ci, (i1_o i1_k)]
        P1_o = delta [o1, i1_o]
        P1_k = delta [k1, i1_k]
        W : parameter [co, ci, k1]
        Y[n, co, o1] = X * P1_o * P1_k * W
        """,
    ),
    "down-sampling": (
        """index n: 2, ci: 4, co: 8, i1: 8
        X : input [n, ci, i1]
        W : parameter [co, ci, k1: 1]
        P1 = pattern(i1 -> o1, k1; stride=2)
        Y[n, co, o1] = X * P1 * W
        """,
        """index n: 2, ci: 4, i1_o: 4, i1_s: 2, o1: 4, k1: 1, co: 8
        X : input [n, ci, (i1_o i1_s)]
        P1_o = delta [o1, i1_o]
        P1 = reduced(i1_s, k1; stride=2)
        W : parameter [co, ci, k1]
        Y[n, co, o1] = X * P1_o * P1 * W
        """,
    ),
    "mixed-dense": (
        """index n: 2, ci: 4, co: 4, i1: 9, i2: 9
        X : input [n, ci, i1, i2]
        W : parameter [co, ci, k1: 1, k2: 7]
        P1 = pattern(i1 -> o1, k1)
        P2 = pattern(i2 -> o2, k2; padding=3)
        Y[n, co, o1, o2] = X * P1 * P2 * W
        """,
        """index n: 2, ci: 4, i1_o: 9, i1_k: 1, i2: 9, o1: 9, k1: 1, k2: 7, co: 4
        X : input [n, ci, (i1_o i1_k), i2]
        P1_o = delta [o1, i1_o]
        P1_k = delta [k1, i1_k]
        P2 = pattern(i2 -> o2, k2; padding=3)
        W : parameter [co, ci, k1, k2]
        Y[n, co, o1, o2] = X * P1_o * P1_k * P2 * W
        """,
    ),
    "delta-pruning": (
        """index a: 3, b: 3, c: 3, e: 2
        X : input [a, e]
        Y : input [(b e)]
        D = delta [a, b, c]
        E = delta [a, b]
        Z[c] = X * Y * D * E
        """,
        """index c: 3, e: 2
        X : input [c, e]
        Y : input [(c e)]
        Z[c] = X * Y
        """,
    ),
    "squeeze": (
        """index n: 2, c: 3, k: 1
        X : input [n, (c k)]
        W : parameter [k, c]
        Y[n] = X * W
        """,
        """index n: 2, c: 3
        X : input [n, c]
        W : parameter [(), c]
        Y[n] = X * W
        """,
    ),
    "merge-parallel-legs": (
        """index n: 2, a: 3, b: 4, d: 5
        X : input [n, (a b)]
        W : parameter [(a b), d]
        Y[n, d] = X * W
        """,
        """index n: 2, a_b: 12, d: 5
        X : input [n, a_b]
        W : parameter [a_b, d]
        Y[n, d] = X * W
        """,
    ),
    "sum-out": (
        """index n: 2, c: 3, d: 3, i: 7, j: 7, k: 3, l: 3
        X : input [n, c, i]
        P = pattern(i -> o, k; stride=2, padding=1)
        Q = pattern(j -> p, l; stride=2, padding=1)
        Y[(c k), (d l)] = X * P * Q * X[n, d, j]
        """,
        """index n: 2, c: 3, i: 7, k: 3, j: 7, l: 3, d: 3
        X : input [n, c, i]
        P = reduced(i, k; stride=2, padding=1)
        Q = reduced(j, l; stride=2, padding=1)
        Y[(c k), (d l)] = X * P * Q * X[n, d, j]
        """,
    ),
    "simplify": (
        """index n: 2, ci: 3, co: 8, i1: 16, i2: 16, o1: 4, o2: 4
        X : input [n, ci, i1, i2]
        W : parameter [co, ci, k1: 4, k2: 4]
        B : parameter [co]
        one = const(1) [n, o1, o2]
        P1 = pattern(i1 -> o1, k1; stride=4)
        P2 = pattern(i2 -> o2, k2; stride=4)
        Y[n, co, o1, o2] = X * P1 * P2 * W
        Y[n, co, o1, o2] += B * one
        """,
        """index n: 2, ci: 3, o1: 4, k1: 4, o2: 4, k2: 4, co: 8
        X : input [n, ci, (o1 k1), (o2 k2)]
        W : parameter [co, ci, k1, k2]
        B : parameter [co]
        one = const(1) [n, o1, o2]
        Y[n, co, o1, o2] = X * W + B * one
        """,
    ),
}


def _unindent(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


@pytest.mark.parametrize("name", list(GOLDENS))
def test_text_golden(name):
    text_in, text_out = (_unindent(t) for t in GOLDENS[name])
    before = tndiag.parse(text_in)
    after = run_checked(before, name).diagram
    assert tndiag.to_text(after).strip() == text_out
    assert tndiag.parse(text_out) == after
    assert_same_value(before, after)
