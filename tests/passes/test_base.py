"""Pass infrastructure: registry, options, pipeline text, traces, verify after each pass."""

import pytest
from corpus import build

from tndiag import ops
from tndiag.errors import PassError, UnknownNameError
from tndiag.ir import Graph, Index, Sum, variable
from tndiag.passes import PASSES, run_pipeline
from tndiag.passes.base import fresh_name, map_terms, parse_pipeline, register


@pytest.fixture
def temporary_pass():
    """Register passes for one test and remove them afterwards."""
    added = []

    def add(name, **options):
        def decorate(fn):
            added.append(name)
            return register(name, **options)(fn)
        return decorate

    yield add
    for name in added:
        PASSES.pop(name, None)


def test_every_issue_pass_is_registered():
    for name in ["differentiate", "vjp", "jvp", "canonicalize", "expand-groups",
                 "expand-batch", "identity"]:
        assert name in PASSES
        assert PASSES[name].doc


def test_parse_pipeline_options_and_types():
    steps = parse_pipeline(" differentiate{wrt=X|W} , vjp{ wrt = W , vector = V },canonicalize")
    assert steps == [("differentiate", {"wrt": ("X", "W")}),
                     ("vjp", {"wrt": ("W",), "vector": "V"}), ("canonicalize", {})]
    assert parse_pipeline("expand-batch{size=3,tensors=X}")[0][1] == {"size": 3,
                                                                     "tensors": ("X",)}


@pytest.mark.parametrize("text, error, match", [
    ("nosuchpass", UnknownNameError, r"unknown pass 'nosuchpass'.*'differentiate'"),
    ("differentiate{wrt=W},frobnicate", UnknownNameError, "unknown pass 'frobnicate'"),
    ("differentiate{bogus=1}", PassError, r"no option 'bogus'; expected one of \['wrt'\]"),
    ("differentiate{wrt}", PassError, "must be key=value"),
    ("identity{x=1}", PassError, "no option 'x'; expected one of none"),
    ("differentiate{wrt=W", PassError, "unclosed .{. of pass .differentiate."),
    ("", PassError, "empty pipeline"),
])
def test_bad_pipelines_raise_precise_errors(text, error, match):
    with pytest.raises(error, match=match):
        parse_pipeline(text)


def test_bad_option_type(temporary_pass):
    @temporary_pass("test-typed", count=int, flag=bool)
    def _typed(diagram, rec, count=0, flag=False):
        rec.fired("typed", f"{count} {flag}")
        return diagram

    assert parse_pipeline("test-typed{count=3,flag=true}") == [
        ("test-typed", {"count": 3, "flag": True})]
    with pytest.raises(PassError, match="option 'count' of pass 'test-typed' expects an integer"):
        parse_pipeline("test-typed{count=three}")
    with pytest.raises(PassError, match="expects true or false"):
        parse_pipeline("test-typed{flag=maybe}")


def test_positional_and_keyword_options():
    g = ops.conv((2, 3, 5), (4, 3, 3))
    d = PASSES["differentiate"]
    assert d(g, "W") == d(g, wrt="W") == d(g, ("W",))
    with pytest.raises(PassError, match="given twice"):
        d(g, "W", wrt="W")
    with pytest.raises(PassError, match="at most 1 option"):
        d(g, "W", "X")
    with pytest.raises(PassError, match="no option 'wrtt'"):
        d(g, wrtt="W")


def test_run_pipeline_names_the_pass_that_breaks_an_invariant(temporary_pass):
    @temporary_pass("test-breaker")
    def _breaker(diagram, rec):
        n = Index("n", 2)
        return Graph.of([variable("X", [n])], [Index("zz", 3)])

    with pytest.raises(PassError, match=r"pass 2 \(test-breaker\) broke an invariant"):
        run_pipeline(ops.conv((2, 3, 5), (4, 3, 3)), "identity,test-breaker")


def test_trace_text_lists_each_pass():
    res = run_pipeline(build("conv1d"), "differentiate{wrt=W},canonicalize")
    text = str(res)
    assert "pass differentiate{wrt=W}" in text and "pass canonicalize" in text
    assert [t.pass_name for t in res.traces] == ["differentiate", "canonicalize"]
    assert res.traces[0].before == build("conv1d")
    assert "unchanged" in str(run_pipeline(build("conv1d"), "identity").traces[0])


def test_map_terms_flattens_sums():
    s = ops.conv((2, 3, 5), (4, 3, 3), bias=True)
    doubled = map_terms(s, lambda t: Sum((t, t)))
    assert isinstance(doubled, Sum) and len(doubled.terms) == 4
    assert map_terms(s.terms[0], lambda t: t) == s.terms[0]


def test_fresh_name():
    assert fresh_name("n", set()) == "n"
    assert fresh_name("n", {"n"}) == "n_2"
    assert fresh_name("n", {"n", "n_2", "n_3"}) == "n_4"


def test_register_rejects_bad_names():
    with pytest.raises(ValueError, match="kebab-case"):
        register("Bad_Name")
