"""Fuzz every registered pass, ``run_pipeline``, ``parse`` and ``export``: the rule holds.

Diagrams come from the shared corpus (concrete and symbolic) plus non-diagrams; pass
options, pipelines, texts and export arguments are drawn from pools of valid and invalid
values (see ``strategies.py``).
"""

import pytest
import torch
from corpus import CORPUS
from hypothesis import given
from hypothesis import strategies as st

import tndiag
from fuzz.strategies import BAD_INTS, FUZZ, ODD, TENSOR_LIKE, check_rule
from tndiag.passes.base import PASSES

_DIAGRAMS = {}


def diagram(i: int):
    """The ``i``-th corpus diagram, built once (diagrams are immutable)."""
    if i not in _DIAGRAMS:
        _DIAGRAMS[i] = CORPUS[i][1]()
    return _DIAGRAMS[i]


NON_DIAGRAMS = [None, 3, "Y[] = X", [1], torch.ones(2), object(), {"X": 1}]
NAMES = ["X", "W", "V", "B", "P1", "n", "g", "ci", "co", "i1", "o1", "k1", "X|W", "W|W",
         "nope", "", "|", "X|nope", ("X",), ("W", "X"), ["X"], (), ("X", 3)]
OPTION_VALUES = NAMES + ["2", "3", "-1", "0", "1.5", "true", "{", "}", "="] + BAD_INTS + ODD \
    + TENSOR_LIKE + [2, 3]


@st.composite
def diagrams(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(NON_DIAGRAMS))
    return diagram(draw(st.integers(0, len(CORPUS) - 1)))


@st.composite
def options(draw, declared):
    names = [k for k, _ in declared] + ["nope"]
    chosen = draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True))
    return {k: draw(st.sampled_from(OPTION_VALUES)) for k in chosen}


@pytest.mark.parametrize("name", sorted(PASSES))
@FUZZ
@given(data=st.data())
def test_passes_follow_the_error_rule(name, data):
    p = PASSES[name]
    g = data.draw(diagrams(), label="diagram")
    opts = data.draw(options(p.options), label="options")
    what = f"pass {name}({type(g).__name__}, {opts!r})"
    result = check_rule(lambda: p(g, **opts), what)
    if result is not None:
        tndiag.verify(result)


STEPS = [f"{n}" for n in PASSES] + ["differentiate{wrt=W}", "vjp{wrt=X,vector=V}",
                                    "jvp{wrt=W}", "expand-batch{size=3,tensors=X}",
                                    "simplify{x=1}", "simplify{", "nope", "", ",", "{}",
                                    "differentiate{wrt=}", "expand-groups{groups=2,legs=ci}"]


@st.composite
def pipelines(draw):
    kind = draw(st.integers(0, 3))
    steps = draw(st.lists(st.sampled_from(STEPS), max_size=4))
    if kind == 0:
        return ",".join(steps)
    if kind == 1:
        return steps
    if kind == 2:
        return [(s, draw(st.sampled_from([{}, {"wrt": "W"}, {"nope": 1}, None, 3])))
                for s in steps]
    return draw(st.sampled_from([None, 3, [3], [("simplify",)], [("simplify", {}, 1)],
                                 {"simplify": {}}, b"simplify", [None]]))


@FUZZ
@given(g=diagrams(), pipeline=pipelines())
def test_run_pipeline_follows_the_error_rule(g, pipeline):
    result = check_rule(lambda: tndiag.run_pipeline(g, pipeline), f"run_pipeline({pipeline!r})")
    assert result is None or isinstance(result.diagram, (tndiag.Graph, tndiag.Sum))


TOKENS = ["index", "n: 2", "i: 5", "X : input [n, i]", "P = pattern(i -> o, k; padding=1)",
          "Y[n, o, k] = X * P", "\n", "[", "]", "*", "=", "δ", "\x00", "99999999999999999999",
          "reduced(i, k)", "const 2 []", "Y[] = X", "#", "(", ")", ",", ":"]


@FUZZ
@given(text=st.one_of(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join),
                      st.text(max_size=40), st.binary(max_size=20),
                      st.sampled_from([None, 3, ["index n: 2"], torch.ones(1)])))
def test_parse_follows_the_error_rule(text):
    result = check_rule(lambda: tndiag.parse(text), f"parse({text!r})")
    assert result is None or isinstance(result, (tndiag.Graph, tndiag.Sum))


EXPORT_VALUES = {
    # Values of compile(sizes=...) are fuzzed with compile itself (tests/fuzz/test_codegen.py).
    "sizes": [None, {}, {"N": 2}, {"nope": 2}],
    "name": ["forward", "f", None, "", "1x", "class", "_private", 3, "a b", "torch"],
    "lowering": ["window", "dense", "nope", None, 3, ""],
}


@FUZZ
@given(i=st.integers(0, len(CORPUS) - 1), data=st.data())
def test_export_follows_the_error_rule(i, data):
    g = diagram(i)
    kind = data.draw(st.sampled_from(["diagram", "program", "other"]), label="what")
    if kind == "program" and all(isinstance(s, int) for s in
                                 (g.terms[0] if isinstance(g, tndiag.Sum) else g).output_shape):
        target = tndiag.compile(g)
    elif kind == "other":
        target = data.draw(st.sampled_from(NON_DIAGRAMS), label="target")
    else:
        target = g
    kwargs = {k: data.draw(st.sampled_from(v), label=k) for k, v in EXPORT_VALUES.items()
              if data.draw(st.booleans(), label=f"give {k}")}
    if data.draw(st.booleans(), label="give diagram"):
        kwargs["diagram"] = data.draw(st.sampled_from([g, None, 3, diagram(0)]), label="diagram")
    result = check_rule(lambda: tndiag.export(target, **kwargs),
                        f"export({type(target).__name__}, {kwargs!r})")
    assert result is None or isinstance(result, str)
