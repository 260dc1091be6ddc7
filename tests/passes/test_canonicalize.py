"""canonicalize: equal diagrams (up to order and names) get equal, hashable canonical forms."""

import random

import pytest
from corpus import CORPUS, IDS, build
from diagram_checks import assert_close, evaluate, inputs_for, pipeline
from hypothesis import given
from hypothesis import strategies as st

from tndiag import ops
from tndiag.ir import Graph, Index, Kind, Sum, delta, variable
from tndiag.passes.canonicalize import BRANCH_BUDGET, canonical_graph, canonicalize


def scramble(diagram, seed: int):
    """The same diagram with shuffled tensors, renamed indices and renamed non-variables."""
    if isinstance(diagram, Sum):
        terms = [scramble(t, seed + k) for k, t in enumerate(diagram.terms)]
        random.Random(seed).shuffle(terms)
        return Sum(tuple(terms))
    rng = random.Random(seed)
    names = list(diagram.indices())
    fresh = [f"x{k}" for k in range(len(names))]
    rng.shuffle(fresh)
    g = diagram.rename_indices(dict(zip(names, fresh)))
    tensors = [t if t.kind is Kind.VARIABLE else t.replace(name=f"{t.name}q{rng.randrange(99)}")
               for t in g.tensors]
    seen, unique = set(), []
    for t in tensors:  # keep non-variable names unique
        while t.kind is not Kind.VARIABLE and t.name in seen:
            t = t.replace(name=t.name + "z")
        seen.add(t.name)
        unique.append(t)
    tensors = [t.replace(axes=tuple(reversed(t.axes))) if t.kind is Kind.DELTA else t
               for t in unique]
    rng.shuffle(tensors)
    return Graph(tuple(tensors), g.output)


@pytest.mark.parametrize("name", IDS)
def test_corpus_scrambled_copies_are_equal(name):
    d = build(name)
    canon = canonicalize(d)
    for seed in range(3):
        other = canonicalize(scramble(d, seed))
        assert other == canon and hash(other) == hash(canon)
    assert canonicalize(canon) == canon  # idempotent


@pytest.mark.parametrize("name", [n for n in IDS if "symbolic" not in n])
def test_value_kept(name):
    d = build(name)
    t = inputs_for(d)
    assert_close(evaluate(pipeline(d, "canonicalize"), t), evaluate(d, t), name)


@given(st.sampled_from([n for n, _ in CORPUS]), st.integers(0, 10**6))
def test_scramble_property(name, seed):
    d = build(name)
    assert canonicalize(scramble(d, seed)) == canonicalize(d)


def test_different_diagrams_differ():
    forms = {canonicalize(ops.conv((2, 3, 8), (4, 3, 3), stride=s, padding=p))
             for s in (1, 2) for p in (0, 1)}
    assert len(forms) == 4
    a = ops.conv((2, 3, 8), (4, 3, 3))
    swapped = a.replace(output=(a.output[0], a.output[2], a.output[1]))
    assert canonicalize(swapped) != canonicalize(a)
    renamed = a.replace(tensors=[t.replace(name="Z") if t.name == "W" else t for t in a.tensors])
    assert canonicalize(renamed) != canonicalize(a)  # variables keep their names


def test_symmetric_occurrences_kfc():
    g = ops.kfc((2, 4, 5, 5), 3, groups=2)
    for seed in range(5):
        assert canonicalize(scramble(g, seed)) == canonicalize(g)
    red = ops.kfac_reduce((2, 4, 5, 5), 3, groups=2)
    assert canonicalize(red) != canonicalize(g)


def test_canonical_names_and_output():
    c = canonical_graph(ops.conv((1, 2, 4), (3, 2, 2)))
    assert [ix.name for ix in c.output_indices] == ["c0", "c1", "c2"]
    assert {t.name for t in c.tensors if t.kind is Kind.PATTERN} == {"P0"}
    assert c.names.count("X") == 1 and c.names.count("W") == 1


def test_sum_terms_sorted():
    s = ops.conv((2, 3, 6), (4, 3, 3), bias=True)
    flipped = Sum(tuple(reversed(s.terms)))
    assert canonicalize(flipped) == canonicalize(s)


def test_delta_leg_order_irrelevant():
    a, b, n = Index("a", 3), Index("b", 3), Index("n", 2)
    X = variable("X", [n, a])
    one = Graph.of([X, delta("D", [a, b])], [n, b])
    two = Graph.of([delta("E", [b, a]), X], [n, b])
    assert canonicalize(one) == canonicalize(two)


def test_budget_bounds_search():
    # many interchangeable copies: the search stays bounded and the result is still valid
    n = Index("n", 2)
    copies = [variable("X", [n, Index(f"a{k}", 2)]) for k in range(8)]
    g = Graph.of(copies, [n])
    assert BRANCH_BUDGET >= 1
    out = pipeline(g, "canonicalize")
    assert len(out.tensors) == 8
    assert canonicalize(scramble(g, 1)) == out
