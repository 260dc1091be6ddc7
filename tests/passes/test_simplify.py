"""The simplification engine and the ``simplify`` pass (all rules to a fixpoint)."""

import pytest
import sympy
from corpus import CORPUS
from hypothesis import assume, given
from hypothesis import strategies as st
from rewrite_checks import apply, assert_same_value, run_checked

import tndiag
from tndiag import ops
from tndiag.errors import PassError
from tndiag.ir import Graph, Index, Kind, Sum, pattern, variable
from tndiag.passes.base import PASSES, Recorder
from tndiag.passes.simplify import (
    RULES,
    SIMPLIFY_ORDER,
    Rule,
    Site,
    Verdict,
    rewrite_to_fixpoint,
    simplify,
)

SIZES = {"N": 2, "C_in": 2, "C_out": 3, "C": 2, "I1": 7, "I2": 6, "K1": 3, "K2": 2}
RULE_PASSES = ["dense", "down-sampling", "mixed-dense", "delta-pruning",
               "merge-parallel-legs", "squeeze", "sum-out", "simplify"]


def test_every_rule_is_a_pass_and_in_simplify():
    assert set(RULE_PASSES) <= set(PASSES)
    assert set(SIMPLIFY_ORDER) == set(RULES)
    assert tndiag.simplify is simplify is PASSES["simplify"]


def _rename_rule(old: str, new: str, decide=True) -> Rule:
    """A toy rule renaming index ``old`` to ``new``; ``decide`` is its verdict."""
    return Rule(f"rename-{old}", lambda g: [Site((), (old,))] if old in g.indices() else [],
                lambda g, s: Verdict(decide, f"{old} -> {new}"),
                lambda g, s: g.rename_indices({old: new}))


def test_engine_runs_rules_in_order_to_a_fixpoint():
    g = Graph.of([variable("X", [Index("a", 2)])], [Index("a", 2)])
    rec = Recorder()
    out = rewrite_to_fixpoint(g, [_rename_rule("b", "c"), _rename_rule("a", "b")], rec)
    assert out.output_indices == (Index("c", 2),)
    assert [(e.rule, e.detail) for e in rec.events] == [("rename-a", "a -> b"),
                                                        ("rename-b", "b -> c")]


def test_engine_reports_undecidable_once_and_does_not_fire():
    g = Graph.of([variable("X", [Index("a", 2)])], [Index("a", 2)])
    rec = Recorder()
    out = rewrite_to_fixpoint(g, [_rename_rule("a", "b", None)], rec)
    assert out == g
    assert [(e.status, e.rule, e.indices) for e in rec.events] == [
        ("skipped", "rename-a", ("a",))]


def test_engine_detects_rules_that_never_stop():
    g = Graph.of([variable("X", [Index("a", 2)])], [Index("a", 2)])
    with pytest.raises(PassError, match="fixpoint"):
        rewrite_to_fixpoint(g, [_rename_rule("a", "b"), _rename_rule("b", "a")], Recorder())


def test_bad_options_raise():
    with pytest.raises(PassError, match="no option"):
        run_checked(ops.conv(ndim=1), "simplify{level=2}")


@pytest.mark.parametrize("name", [name for name, _ in CORPUS])
def test_corpus_keeps_value_and_is_idempotent(name):
    g = dict(CORPUS)[name]()
    res = run_checked(g, "simplify")
    out = res.diagram
    assert apply("simplify", out) == out
    assert apply("simplify", g) == out  # deterministic
    if g.is_concrete():
        assert_same_value(g, out)
    else:
        assert_same_value(g, out, sizes=SIZES)


def test_convnext_stem_becomes_reshape_and_matmul():
    g = ops.conv((1, 3, 224, 224), (4, 3, 4, 4), stride=4)
    out = apply("simplify", g)
    assert [t.kind for t in out.tensors] == [Kind.VARIABLE, Kind.VARIABLE]
    assert tndiag.compile(out).equation == "abcdef,gbdf->agce"
    assert_same_value(g, out)


def test_bias_sum_keeps_output_and_value():
    g = ops.conv((2, 3, 8, 8), (4, 3, 4, 4), stride=4, bias=True)
    out = apply("simplify", g)
    assert isinstance(out, Sum) and out.output == g.output
    assert all(t.kind is Kind.VARIABLE for t in out.terms[0].tensors)
    assert_same_value(g, out)


def test_kfac_reduce_like_diagram_sums_out_then_stays():
    n, c, i, k = Index("n", 2), Index("c", 2), Index("i", 6), Index("k", 3)
    o = Index("o", 4)
    g = Graph.of([variable("X", [n, c, i]), pattern("P", i, o, k)], [(c, k)])
    res = run_checked(g, "simplify")
    assert [e.rule for e in res.traces[0].fired] == ["sum-out"]
    assert_same_value(g, res.diagram)


def test_kfac_reduce_of_a_dense_conv_needs_no_pattern():
    """Dense comes before sum-out: Σ_o of a dense Π is a reshape and a sum over ĩ."""
    n, c, d = Index("n", 2), Index("c", 3), Index("d", 3)
    i, j, k, l = Index("i", 8), Index("j", 8), Index("k", 4), Index("l", 4)
    o, p = Index("o", 2), Index("p", 2)
    g = Graph.of([variable("X", [n, c, i]), pattern("P", i, o, k, 4),
                  pattern("Q", j, p, l, 4), variable("X", [n, d, j])], [(c, k), (d, l)])
    out = run_checked(g, "simplify").diagram
    a, b = Index("i_o", 2), Index("j_o", 2)
    assert out == Graph.of([variable("X", [n, c, (a, k)]), variable("X", [n, d, (b, l)])],
                           [(c, k), (d, l)])
    assert_same_value(g, out)


def test_trace_is_printable():
    res = run_checked(ops.conv((2, 3, 8), (4, 3, 1), stride=2), "simplify")
    text = str(res)
    assert text.splitlines()[0].startswith("pass simplify: 2 rewrite(s)")
    assert "fired   down-sampling [tensors P1; indices i1]" in text


def _conv_configs():
    """Small random convolutions, biased towards the dense and down-sampling categories."""
    dim = st.tuples(st.integers(1, 3), st.integers(1, 3), st.sampled_from([0, 0, 1]),
                    st.sampled_from([1, 1, 2]), st.integers(1, 3))
    return st.fixed_dictionaries({
        "dims": st.lists(dim, min_size=1, max_size=2), "N": st.integers(1, 2),
        "groups": st.sampled_from([1, 2]), "bias": st.booleans(),
        "kind": st.sampled_from(["conv", "transpose", "unfold", "kfc", "kfac-reduce"])})


def _build(cfg):
    K = [d[0] for d in cfg["dims"]]
    S = [d[1] for d in cfg["dims"]]
    P = [d[2] for d in cfg["dims"]]
    D = [d[3] for d in cfg["dims"]]
    I = [max(d[4] * s, dd * (k - 1) + 1) for d, s, k, dd in zip(cfg["dims"], S, K, D)]
    G, N = cfg["groups"], cfg["N"]
    if cfg["kind"] == "conv":
        return ops.conv((N, 2 * G, *I), (G, 2, *K), stride=S, padding=P, dilation=D,
                        groups=G, bias=cfg["bias"])
    if cfg["kind"] == "transpose":
        return ops.conv_transpose((N, 2 * G, *[d[4] for d in cfg["dims"]]), (2 * G, 1, *K),
                                  stride=S, padding=P, dilation=D, groups=G, bias=cfg["bias"])
    if cfg["kind"] == "unfold":
        return ops.unfold((N, G, *I), K, stride=S, padding=P, dilation=D)
    factor = ops.kfc if cfg["kind"] == "kfc" else ops.kfac_reduce
    return factor((N, G, *I), K, stride=S, padding=P, dilation=D, groups=G)


@given(cfg=_conv_configs())
def test_simplify_preserves_value_property(cfg):
    try:
        g = _build(cfg)
    except tndiag.InvalidArgumentError:
        assume(False)
    out = run_checked(g, "simplify").diagram
    assert_same_value(g, out)


@given(K=st.integers(1, 3), S=st.integers(1, 3), m=st.integers(1, 3), N=st.integers(1, 2))
def test_symbolic_simplify_then_specialise(K, S, m, N):
    """With I = S·M symbolic, the rules decide I % S with sympy and fire as for concrete M."""
    M = sympy.Symbol("M", integer=True, positive=True)
    assume(S * m >= K)
    symbolic = ops.conv(("N", 2, S * M), (3, 2, K), stride=S)
    concrete = ops.conv((N, 2, S * m), (3, 2, K), stride=S)
    sym = run_checked(symbolic, "simplify")
    con = run_checked(concrete, "simplify")
    assert [e.rule for e in sym.traces[0].fired] == [e.rule for e in con.traces[0].fired]
    assert sym.diagram.substitute({"N": N, "M": m}) == con.diagram
    assert_same_value(concrete, sym.diagram, sizes={"N": N, "M": m})


LAYERS = {  # docs/method.md experiment categories, small: (input, weight shape, hyper-params)
    "dense": ((2, 3, 8, 8), (4, 3, 4, 4), {"stride": 4}),
    "down-sampling": ((2, 4, 8, 8), (6, 4, 1, 1), {"stride": 2}),
    "mixed-dense": ((2, 3, 7, 7), (3, 3, 1, 3), {"padding": (0, 1)}),
    "general": ((2, 2, 6, 5), (4, 1, 3, 2), {"stride": 2, "padding": 1, "groups": 2}),
}
EXPECTED = {"dense": {"dense"}, "down-sampling": {"down-sampling"}, "mixed-dense": {"dense"},
            "general": set()}


@pytest.mark.parametrize("category", list(LAYERS))
@pytest.mark.parametrize("build", ["conv_input_vjp", "conv_weight_vjp", "conv_input_jvp",
                                   "conv_weight_jvp", "kfc", "kfac_reduce"])
def test_derived_operations(category, build):
    """Derived operations per layer category: the category's rule fires, the value stays."""
    x, w, kwargs = LAYERS[category]
    if build in ("kfc", "kfac_reduce"):
        g = getattr(ops, build)(x, w[2:], **kwargs)
    else:
        g = getattr(ops, build)(x, w, **kwargs)
    res = run_checked(g, "simplify")
    rules = {e.rule for e in res.traces[0].fired} & {"dense", "down-sampling"}
    if build == "conv_input_vjp" and category == "down-sampling":
        assert rules == set()  # Π's i leg is the output: no slicing of the result
    else:
        assert rules == EXPECTED[category]
    assert_same_value(g, res.diagram)
