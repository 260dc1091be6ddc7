"""The ``subsample`` pass: structure of the result, value for a fixed set of kept positions
(dense oracle, conv grids and random diagrams), exact expectation over every draw, the
compiled program's smaller legs, the picture, and errors."""

import itertools
import math

import pytest
import torch
from diagram_checks import conv_cases, inputs_for
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, diagrams

import tndiag
from tndiag import ops
from tndiag.errors import InvalidArgumentError, PassError, TndiagError, UnknownNameError
from tndiag.ir import Graph, Index, Kind, Sum, reduced_pattern, variable, verify
from tndiag.passes import run_pipeline
from tndiag.passes.subsample import subsample


def _legs(axes):
    return [ix for axis in axes for ix in axis]


def _select(x, axes, index, positions):
    """``x`` (laid out as ``axes``) restricted to ``positions`` of ``index``."""
    legs = _legs(axes)
    names = [ix.name for ix in legs]
    if index not in names:
        return x
    flat = x.reshape([int(ix.size) for ix in legs]).index_select(names.index(index), positions)
    shape = [math.prod(len(positions) if ix.name == index else int(ix.size) for ix in axis)
             for axis in axes]
    return flat.reshape(shape)


def _mask(x, axes, index, positions, size):
    """``x`` with every slice of ``index`` outside ``positions`` set to zero."""
    names = [ix.name for ix in _legs(axes)]
    if index not in names:
        return x
    keep = torch.zeros(size, dtype=x.dtype)
    keep[positions] = 1
    view = [1] * len(names)
    view[names.index(index)] = size
    flat = x.reshape([int(ix.size) for ix in _legs(axes)])
    return (flat * keep.view(view)).reshape(x.shape)


def _terms(diagram):
    return diagram.terms if isinstance(diagram, Sum) else (diagram,)


def _variables(diagram):
    found = {}
    for term in _terms(diagram):
        for t in term.variables():
            found.setdefault(t.name, t)
    return found


def _reference(diagram, index, positions, scale, inputs):
    """Dense oracle of the original diagram with the dropped slices of every variable zeroed,
    times ``scale`` (terms of a sum without the index: exact); an open ``index`` is
    restricted to ``positions`` (in their order)."""
    size = int(next(t.indices()[index].size for t in _terms(diagram) if index in t.indices()))
    variables = _variables(diagram)
    masked = {n: _mask(x, variables[n].axes, index, positions, size) if n in variables else x
              for n, x in inputs.items()}
    value = sum(dense_value(term, masked) * scale if index in term.indices() else
                dense_value(term, inputs) for term in _terms(diagram))  # other terms: exact
    return _select(value, _terms(diagram)[0].output, index, positions)


def _sliced_inputs(original, index, positions, inputs, sample):
    given_ = dict(inputs)
    for n, t in _variables(original).items():
        given_[n] = _select(inputs[n], t.axes, index, positions)
    given_[sample] = positions
    return given_


def _sliced_value(sliced, original, index, positions, inputs, sample=None):
    program = tndiag.compile(sliced)
    given_ = _sliced_inputs(original, index, positions, inputs, sample or f"keep_{index}")
    return program(**{n: given_[n] for n in program.inputs}), program


WEIGHT_VJPS = [
    ((2, 3, 8), (4, 3, 3), dict(), "i1"),
    ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=2, padding=1, groups=2), "i1"),
    ((1, 2, 6, 5), (3, 2, 2, 3), dict(padding=((2, 0), (1, 1)), dilation=2), "i2"),
    ((2, 2, 5, 4, 4), (2, 2, 2, 1, 3), dict(stride=(1, 2, 1), padding=1), "i3"),
    ((2, 4, 6), (6, 2, 3), dict(groups=2, stride=2), "ci"),
    ((2, 3, 5, 5), (2, 3, 3, 3), dict(padding="same"), "ci"),
]


@pytest.mark.parametrize("x_shape,w_shape,kw,index", WEIGHT_VJPS)
@pytest.mark.parametrize("mode", ["bernoulli", "fixed"])
def test_weight_vjp_equals_the_masked_oracle_for_fixed_positions(x_shape, w_shape, kw, index,
                                                                 mode):
    diagram = ops.conv_weight_vjp(x_shape, w_shape, **kw)
    size = int(diagram.index(index).size)
    gen = torch.Generator().manual_seed(size)
    positions = torch.randperm(size, generator=gen)[:max(1, size // 2)]
    sliced = verify(subsample(diagram, index, 0.4, mode, len(positions)))
    scale = 1 / 0.4 if mode == "bernoulli" else size / len(positions)
    inputs = inputs_for(diagram)
    got, program = _sliced_value(sliced, diagram, index, positions, inputs)
    assert_matches_oracle(got, _reference(diagram, index, positions, scale, inputs), mode)
    x = dict(zip(program.inputs, program.input_shapes))["X"]
    axis = 1 if index == "ci" else 1 + int(index[1])
    assert x[axis] == len(positions) * (kw.get("groups", 1) if index == "ci" else 1)


@pytest.mark.parametrize("x_shape,w_shape,kw,index", [c for c in WEIGHT_VJPS if c[3] != "ci"])
def test_sampled_weight_vjp_program_gathers_on_the_smaller_leg(x_shape, w_shape, kw, index):
    """No dense Π: the sliced pattern is a gather step and X's operand has the kept size."""
    sliced = subsample(ops.conv_weight_vjp(x_shape, w_shape, **kw), index, 0.5, "fixed", 2)
    program = tndiag.compile(sliced)
    assert "gather" in [step.label for step in program.steps], program
    assert all(op.lowering != "sliced-pattern" for op in program.operands)
    (x,) = [op for op in program.operands if op.name == "X"]
    names = [ix.name for ix in x.tensor.indices]
    assert x.shape[names.index(index)] == 2
    shapes = dict(zip(program.inputs, program.input_shapes))
    axis = 1 + int(index[1])
    assert shapes["X"] == (*x_shape[:axis], 2, *x_shape[axis + 1:])
    assert shapes["keep_" + index] == (2,) and program.samples == (f"keep_{index}",)


@pytest.mark.parametrize("mode", ["bernoulli", "fixed"])
@pytest.mark.parametrize("index", ["i1", "ci"])
def test_expectation_over_every_draw_is_the_exact_value(mode, index):
    """Exact expectation: every subset of positions, weighted by its probability."""
    diagram = ops.conv_weight_vjp((2, 2, 5), (3, 2, 3), padding=1)
    size, keep = int(diagram.index(index).size), 0.4
    inputs = inputs_for(diagram)
    exact = dense_value(diagram, inputs)
    mean = torch.zeros_like(exact)
    sizes = range(1, size + 1) if mode == "bernoulli" else [2]
    for m in sizes:
        sliced = subsample(diagram, index, keep, mode, m)
        for chosen in itertools.combinations(range(size), m):
            positions = torch.tensor(chosen)
            weight = (keep ** m * (1 - keep) ** (size - m) if mode == "bernoulli"
                      else 1 / math.comb(size, m))
            got, _ = _sliced_value(sliced, diagram, index, positions, inputs)
            if index == "ci":
                full = torch.zeros_like(exact)
                full[:, positions] = got
                got = full
            mean += weight * got
    assert_matches_oracle(mean, exact, f"{mode} {index}")


@settings(max_examples=25, deadline=None)
@given(conv_cases(max_ndim=3),
       st.sampled_from(["bernoulli", "fixed"]), st.data())
def test_drawn_convolutions_match_the_masked_oracle(case, mode, data):
    diagram = ops.conv_weight_vjp(case["x_shape"], case["w_shape"], stride=case["stride"],
                                  padding=case["padding"], dilation=case["dilation"],
                                  groups=case["groups"])
    nd = len(case["w_shape"]) - 2
    index = data.draw(st.sampled_from(["ci"] + [f"i{d + 1}" for d in range(nd)]))
    size = int(diagram.index(index).size)
    m = data.draw(st.integers(1, size))
    positions = torch.tensor(data.draw(st.permutations(range(size)))[:m])
    inputs = inputs_for(diagram)
    got, _ = _sliced_value(subsample(diagram, index, 0.5, mode, m), diagram, index, positions,
                           inputs)
    scale = 2.0 if mode == "bernoulli" else size / m
    assert_matches_oracle(got, _reference(diagram, index, positions, scale, inputs), index)


@settings(max_examples=15, deadline=None)
@given(conv_cases(transposed=True, max_ndim=2), st.data())
def test_transposed_weight_vjp_samples_the_pattern_input_leg(case, data):
    """In a transposed convolution the pattern's i leg is on ``V``: that leg can be sampled
    (a gather of X), X's own spatial leg is the pattern's o leg and cannot."""
    diagram = ops.conv_weight_vjp(case["x_shape"], case["w_shape"], transposed=True,
                                  stride=case["stride"], padding=case["padding"],
                                  dilation=case["dilation"], groups=case["groups"],
                                  output_padding=case["output_padding"])
    pattern = data.draw(st.sampled_from([t for t in diagram.tensors if t.kind is Kind.PATTERN]))
    i, o, _ = pattern.indices
    size = int(i.size)
    m = data.draw(st.integers(1, size))
    positions = torch.randperm(size)[:m]
    inputs = inputs_for(diagram)
    got, program = _sliced_value(subsample(diagram, i.name, 0.5, "fixed", m), diagram, i.name,
                                 positions, inputs)
    assert_matches_oracle(got, _reference(diagram, i.name, positions, size / m, inputs), "V")
    assert "gather" in [s.label for s in program.steps]
    with pytest.raises(PassError, match="o leg of pattern"):
        subsample(diagram, o.name, 0.5)


def _samplable(diagram):
    """Indices on a variable (every occurrence of it) and on no δ, reduced or sliced pattern,
    nor a pattern leg other than i."""
    bad, on_variable = set(), set()
    for term in _terms(diagram):
        for t in term.tensors:
            names = [ix.name for ix in t.indices]
            if t.kind is Kind.VARIABLE:
                on_variable |= set(names)
                others = [o for g in _terms(diagram) for o in g.variables() if o.name == t.name]
                bad |= {n for n in names if any(n not in [ix.name for ix in o.indices]
                                                for o in others)}
            elif t.kind is Kind.PATTERN:
                bad |= set(names[1:])
            elif t.kind is not Kind.CONSTANT:
                bad |= set(names)
    return sorted(on_variable - bad)


@oracle_settings()
@given(diagrams(), st.data())
def test_random_diagrams_match_the_masked_oracle(diagram, data):
    choices = _samplable(diagram)
    assume(choices)
    index = data.draw(st.sampled_from(choices))
    open_ = index in [ix.name for ix in _terms(diagram)[0].output_indices]
    # a summed index must be on a variable of every term that carries it (the mask's place)
    assume(open_ or all(any(index in [ix.name for ix in t.indices] for t in term.variables())
                        for term in _terms(diagram) if index in term.indices()))
    size = int(next(t.indices()[index].size for t in _terms(diagram) if index in t.indices()))
    tndiag.compile(diagram)
    m = data.draw(st.integers(1, size))
    positions = torch.tensor(data.draw(st.permutations(range(size)))[:m])
    inputs = inputs_for(diagram)
    sliced = verify(subsample(diagram, index, 0.5, "fixed", m, "keep_s"))
    got, program = _sliced_value(sliced, diagram, index, positions, inputs, "keep_s")
    assert_matches_oracle(got, _reference(diagram, index, positions, size / m, inputs),
                          f"{index}\n{sliced}\n{program}")
    given_ = _sliced_inputs(diagram, index, positions, inputs, "keep_s")
    assert_matches_oracle(dense_value(sliced, given_), got, "oracle of the sliced diagram")


def test_trace_text_form_and_picture_show_the_sampled_leg():
    diagram = ops.conv_weight_vjp((2, 3, 8, 6), (4, 3, 3, 2))
    result = run_pipeline(diagram, "subsample{index=i1,keep=0.5,mode=fixed}")
    (trace,) = result.traces
    assert "subsample" in str(trace) and "i1: 4 of 8" in str(trace)
    assert trace.fired[0].indices == ("i1",) and set(trace.fired[0].tensors) == {"X", "P1"}
    sliced = result.diagram
    assert tndiag.parse(tndiag.to_text(sliced)) == sliced
    assert "= sliced(i1 -> o1, k1; I=8, sample=keep_i1)" in tndiag.to_text(sliced)
    dot = tndiag.to_dot(sliced)
    (edge,) = [line for line in dot.splitlines() if '"X" -- "P1"' in line]
    assert 'label="i1 sampled"' in edge and 'style="dotted"' in edge
    assert "Π[s]" in dot


def test_trace_picture_highlights_a_sampled_channel_leg():
    """A sampled channel leg has no sliced pattern to mark: the trace picture highlights it."""
    from tndiag.render.trace import changed_names, trace_to_dot

    result = run_pipeline(ops.conv_weight_vjp((2, 4, 6), (2, 4, 3)),
                          "subsample{index=ci,keep=0.5}")
    before, after = changed_names(result.traces[0])
    assert "ci" in before and "ci" in after and "X" in after
    assert "subsample" in trace_to_dot(result)


def test_symbolic_diagram_gets_a_kept_size_symbol():
    sliced = subsample(ops.conv_weight_vjp(ndim=1), "i1", 0.5)
    assert str(sliced.index("i1").size) == "M_i1"
    program = tndiag.compile(sliced, sizes={"N": 2, "C_in": 3, "C_out": 2, "I1": 9, "K1": 3,
                                            "M_i1": 4})
    assert dict(zip(program.inputs, program.input_shapes))["keep_i1"] == (4,)


def test_keep_one_keeps_every_position_and_the_value():
    diagram = ops.conv_weight_vjp((2, 3, 7), (2, 3, 3), stride=2)
    inputs = inputs_for(diagram)
    positions = torch.arange(7)
    got, _ = _sliced_value(subsample(diagram, "i1", 1.0), diagram, "i1", positions, inputs)
    assert_matches_oracle(got, dense_value(diagram, inputs), "keep=1")


def test_wrong_positions_are_refused_at_run_time():
    program = tndiag.compile(subsample(ops.conv_weight_vjp((1, 1, 6), (1, 1, 3)), "i1", 0.5))
    x, v = torch.randn(1, 1, 3), torch.randn(1, 1, 4)
    with pytest.raises(InvalidArgumentError, match=r"\[0, 6\)"):
        program(X=x, V=v, keep_i1=torch.tensor([0, 2, 6]))
    with pytest.raises(InvalidArgumentError, match="int64"):
        program(X=x, V=v, keep_i1=torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("options,error,fragment", [
    (dict(index="i1", keep=0.0), InvalidArgumentError, "(0, 1]"),
    (dict(index="i1", keep=1.5), InvalidArgumentError, "(0, 1]"),
    (dict(index="i1", keep=float("nan")), InvalidArgumentError, "(0, 1]"),
    (dict(index="i1", keep=True), InvalidArgumentError, "(0, 1]"),
    (dict(index="i1", keep=0.5, mode="poisson"), InvalidArgumentError, "mode must be one of"),
    (dict(index="nowhere", keep=0.5), UnknownNameError, "no tensor carries"),
    (dict(index="o1", keep=0.5), PassError, "o leg of pattern 'P1'"),
    (dict(index="k1", keep=0.5), PassError, "k leg of pattern 'P1'"),
    (dict(index="i1", keep=0.5, size=9), InvalidArgumentError, "between 1 and the size 8"),
    (dict(index="i1", keep=0.5, sample="X"), InvalidArgumentError, "names no tensor"),
    (dict(index="i1", keep=0.5, sample="2x"), InvalidArgumentError, "identifier"),
])
def test_bad_options_raise_tndiag_errors_naming_the_culprit(options, error, fragment):
    diagram = ops.conv_weight_vjp((2, 3, 8), (4, 3, 3))
    with pytest.raises(error) as info:
        subsample(diagram, **options)
    assert fragment in str(info.value) and isinstance(info.value, TndiagError)


def test_sampling_twice_or_a_reduced_pattern_leg_is_refused():
    sliced = subsample(ops.conv_weight_vjp((2, 3, 8), (4, 3, 3)), "i1", 0.5)
    with pytest.raises(PassError, match="sliced 'P1'"):
        subsample(sliced, "i1", 0.5)
    n, i, k = Index("n", 2), Index("i", 5), Index("k", 2)
    summed = Graph.of([variable("X", [n, i]), reduced_pattern("R", i, k, 4)], [n, k])
    with pytest.raises(PassError, match="reduced 'R'"):
        subsample(summed, "i", 0.5)
    with pytest.raises(PassError, match="some occurrences of variable 'X'"):
        subsample(ops.kfac_reduce((2, 3, 8), 3), "i1", 0.5)
    with pytest.raises(PassError, match="keep"):
        run_pipeline(ops.conv_weight_vjp((2, 3, 8), (4, 3, 3)), "subsample{index=i1,keep=x}")


def test_parse_rejects_a_sliced_pattern_without_its_size_or_positions():
    text = ("index n: 2, j: 2, o: 3, k: 3\nX : input [n, j]\nV : vector [n, o]\n"
            "P = sliced(j -> o, k; {})\nY[k] = X * P * V\n")
    assert tndiag.parse(text.format("I=5, sample=s")).tensor("P").full_size == 5
    for options, fragment in [("I=5", "'sample'"), ("sample=s", "'I'"),
                              ("I=5, sample=2", "identifier")]:
        with pytest.raises(tndiag.DiagramSyntaxError, match=fragment):
            tndiag.parse(text.format(options))
