"""expand-groups / expand-batch: map a diagram over a new group or batch leg."""

import pytest
from corpus import IDS, build
from diagram_checks import assert_close, evaluate, inputs_for, pipeline
from hypothesis import given
from hypothesis import strategies as st

from tndiag import ops
from tndiag.errors import InvalidArgumentError, PassError, UnknownNameError
from tndiag.ir import Sum
from tndiag.passes.canonicalize import canonicalize
from tndiag.passes.expand import expand_batch, expand_groups


@pytest.mark.parametrize("G", [1, 2, 3])
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2)])
def test_groups_of_one_group_conv_is_grouped_conv(G, kw):
    one = ops.conv((2, 2, 7), (3, 2, 3), **kw)
    grouped = pipeline(one, f"expand-groups{{groups={G},legs=ci|co,into=co}}")
    want = ops.conv((2, 2 * G, 7), (3 * G, 2, 3), groups=G, **kw)
    if G == 1:  # the builder has no g leg for one group; the values still agree
        t = inputs_for(want)
        assert_close(evaluate(grouped, t), evaluate(want, t))
    else:
        assert canonicalize(grouped) == canonicalize(want)


@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3), st.booleans())
def test_group_slices_are_the_original_diagram(G, ndim, S, into):
    one = ops.conv((2, 2, *[5] * ndim), (3, 2, *[2] * ndim), stride=S)
    opts = "into=co," if into else ""
    grouped = pipeline(one, f"expand-groups{{{opts}groups={G},legs=ci|co}}")
    t = inputs_for(grouped, seed=G)
    y = evaluate(grouped, t)
    x = t["X"].unflatten(1, (G, 2))
    w = t["W"].unflatten(0, (G, 3))
    for g in range(G):
        want = evaluate(one, {"X": x[:, g], "W": w[g]})
        got = y.unflatten(1, (G, 3))[:, g] if into else y[g]
        assert_close(got, want, f"group {g}")


def test_batch_slices_are_the_original_diagram():
    g = ops.conv((2, 3, 6), (4, 3, 3), padding=1)
    batched = pipeline(g, "expand-batch{size=3,tensors=W,index=z}")
    assert batched.output_shape == (3, *g.output_shape)
    assert batched.tensor("W").shape == (3, 4, 3, 3)
    t = inputs_for(batched)
    y = evaluate(batched, t)
    for z in range(3):
        assert_close(y[z], evaluate(g, {"X": t["X"], "W": t["W"][z]}), f"slice {z}")


def test_batch_of_sum_broadcasts_terms_without_the_tensor():
    g = ops.conv((2, 3, 6), (4, 3, 3), bias=True)
    batched = expand_batch(g, 2, "X", "z")
    t = inputs_for(batched)
    y = evaluate(batched, t)
    for z in range(2):
        assert_close(y[z], evaluate(g, {"X": t["X"][z], "W": t["W"], "B": t["B"]}))


def test_kfc_groups_come_from_expand_groups():
    g = ops.kfc((2, 4, 5), 3, groups=2)
    assert g.output_shape == (2, 6, 6)
    assert all(t.axes[1][0].name == "g" for t in g.tensors if t.name == "X")


def test_trace_and_symbolic_size():
    out, trace = expand_batch.traced(ops.conv(ndim=1), "Z", "X", "z")
    assert str(out.output_shape[0]) == "Z"
    assert trace.fired[0].rule == "expand-batch"


def test_errors():
    g = ops.conv((2, 3, 6), (4, 3, 3))
    with pytest.raises(PassError, match="index 'n' already exists"):
        expand_batch(g, 2, "X", "n")
    with pytest.raises(UnknownNameError, match="no tensor named 'Q'"):
        expand_batch(g, 2, "Q", "z")
    with pytest.raises(InvalidArgumentError, match="only variables"):
        expand_batch(g, 2, "P1", "z")
    with pytest.raises(InvalidArgumentError, match="size must be a positive"):
        expand_batch(g, 0, "X", "z")
    with pytest.raises(UnknownNameError, match="no index named 'cq'"):
        expand_groups(g, 2, "cq")
    with pytest.raises(PassError, match="pattern tensor"):
        expand_groups(g, 2, "k1")
    with pytest.raises(UnknownNameError, match="into='q'"):
        expand_groups(g, 2, "ci", "g", "q")
    with pytest.raises(PassError, match="expects a tuple|no option"):
        pipeline(g, "expand-groups{groupz=2}")


@pytest.mark.parametrize("name", [n for n in IDS if "symbolic" not in n])
def test_corpus_batch_over_every_variable(name):
    d = build(name)
    terms = d.terms if isinstance(d, Sum) else (d,)
    names = sorted({t.name for term in terms for t in term.variables()})
    batched = pipeline(d, f"expand-batch{{size=2,tensors={'|'.join(names)},index=zz}}")
    t = inputs_for(batched, seed=3)
    y = evaluate(batched, t)
    for z in range(2):
        assert_close(y[z], evaluate(d, {k: v[z] for k, v in t.items()}), f"{name}[{z}]")
