"""``parse(to_text(d)) == d`` over the corpus, builder hyper-parameter grids, random diagrams."""

import itertools

import pytest
from corpus import CORPUS
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tndiag
from syntax.diagrams import diagrams
from tndiag import ops


def _roundtrip(diagram):
    text = tndiag.to_text(diagram)
    back = tndiag.parse(text)
    assert back == diagram, text
    assert type(back) is type(diagram)
    assert tndiag.to_text(back) == text  # printing is deterministic
    return text


@pytest.mark.parametrize("name, thunk", CORPUS, ids=[name for name, _ in CORPUS])
def test_every_corpus_diagram_round_trips(name, thunk):
    _roundtrip(thunk())


_CONV_GRID = list(itertools.product(
    [1, 2, 3],                        # stride
    [0, 1, "asymmetric", "same"],     # padding
    [1, 2],                           # dilation
    [1, 2],                           # groups
    [False, True],                    # bias
))


@pytest.mark.parametrize("stride, padding, dilation, groups, bias", [
    case for case in _CONV_GRID if case[1] != "same" or case[0] == 1])  # as torch: no same+stride
def test_conv_round_trips_over_hyper_parameters(stride, padding, dilation, groups, bias):
    for ndim, shape in ((1, (2, 4, 11)), (2, (2, 4, 9, 8))):
        pad = ((0, 2),) * ndim if padding == "asymmetric" else padding
        weight = (4, 4 // groups, *(3,) * ndim)
        _roundtrip(ops.conv(shape, weight, stride=stride, padding=pad, dilation=dilation,
                            groups=groups, bias=bias))
        if padding != "same":
            _roundtrip(ops.conv(ndim=ndim, stride=stride, padding=pad, dilation=dilation,
                                bias=bias))


@pytest.mark.parametrize("stride, padding, output_padding, groups", [
    (s, p, op, g) for s, p, op, g in itertools.product([1, 2, 3], [0, 1, 2], [0, 1, 2], [1, 2])
    if op < s])
def test_conv_transpose_round_trips(stride, padding, output_padding, groups):
    _roundtrip(ops.conv_transpose((2, 4, 5, 4), (4, 2, 3, 2), stride=stride, padding=padding,
                                  output_padding=output_padding, groups=groups, bias=True))
    _roundtrip(ops.conv_transpose(ndim=1, stride=stride, padding=padding,
                                  output_padding=output_padding))


@pytest.mark.parametrize("kernel, stride, padding, dilation", list(itertools.product(
    [2, 3, (3, 2)], [1, 2], [0, 1, ((1, 0), (0, 2))], [1, 2])))
def test_unfold_fold_and_kernel_unfold_round_trip(kernel, stride, padding, dilation):
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)
    _roundtrip(ops.unfold((2, 3, 9, 8), kernel, **kwargs))
    _roundtrip(ops.unfold(kernel_size=(kernel, kernel) if isinstance(kernel, int) else kernel,
                          **kwargs))
    unfolded = ops.unfold((2, 3, 9, 8), kernel, **kwargs).output_shape
    _roundtrip(ops.fold((2, *unfolded[1:]), (9, 8), kernel, **kwargs))
    _roundtrip(ops.unfold_kernel((4, 1, *((kernel,) * 2 if isinstance(kernel, int) else kernel)),
                                 (9, 8), groups=2, **kwargs))


_DERIVED = {
    "conv_input_jvp": lambda: ops.conv_input_jvp((2, 4, 9, 8), (6, 2, 3, 3), stride=2,
                                                 padding=1, groups=2),
    "conv_input_vjp": lambda: ops.conv_input_vjp((2, 4, 9, 8), (6, 2, 3, 3), stride=2,
                                                 padding=1, groups=2),
    "conv_input_vjp-transposed": lambda: ops.conv_input_vjp(
        (2, 4, 5), (4, 3, 3), transposed=True, stride=2, output_padding=1),
    "conv_jacobian-W": lambda: ops.conv_jacobian((2, 4, 9), (6, 4, 3), stride=2),
    "conv_jacobian-X": lambda: ops.conv_jacobian((2, 4, 9), (6, 4, 3), wrt="X", stride=2),
    "conv_weight_jvp": lambda: ops.conv_weight_jvp((2, 4, 9, 8), (6, 2, 3, 3), groups=2),
    "conv_weight_vjp": lambda: ops.conv_weight_vjp((2, 4, 9, 8), (6, 2, 3, 3), groups=2,
                                                   dilation=2),
    "grad_output_kfac": lambda: ops.grad_output_kfac((2, 4, 5, 5)),
    "grad_output_kfac-reduce": lambda: ops.grad_output_kfac((2, 4, 5, 5), reduce=True,
                                                            scale=0.5),
    "kfac_reduce": lambda: ops.kfac_reduce((2, 4, 9, 8), (3, 2), stride=2, padding=1, groups=2),
    "kfc": lambda: ops.kfc((2, 4, 9, 8), (3, 2), stride=2, padding=1, groups=2),
    "kfc-transposed": lambda: ops.kfc((2, 4, 9), (3,), stride=2, transposed=True,
                                      output_padding=1),
    "per_sample_weight_vjp": lambda: ops.per_sample_weight_vjp(
        (2, 4, 9, 8), (5, 2, 6, 4, 3), (3, 3), stride=2),
    "weight_ggn": lambda: ops.weight_ggn((2, 4, 9, 8), (5, 2, 6, 4, 3), (3, 3), stride=2,
                                         groups=2),
    "weight_ggn_diag": lambda: ops.weight_ggn_diag((2, 4, 9, 8), (5, 2, 6, 4, 3), (3, 3),
                                                   stride=2),
    "weight_ggn_gram": lambda: ops.weight_ggn_gram((2, 4, 9, 8), (5, 2, 6, 4, 3), (3, 3),
                                                   stride=2),
}


@pytest.mark.parametrize("name", sorted(_DERIVED))
def test_derived_builders_round_trip(name):
    _roundtrip(_DERIVED[name]())


def test_every_public_builder_is_covered():
    covered = {"conv", "conv_transpose", "unfold", "fold", "unfold_kernel"}
    covered |= {name.split("-")[0] for name in _DERIVED}
    assert set(ops.__all__) <= covered, sorted(set(ops.__all__) - covered)


@settings(max_examples=100)
@given(st.data())
def test_random_builder_configurations_round_trip(data):
    ndim = data.draw(st.integers(1, 3))
    groups = data.draw(st.integers(1, 2))
    pairs = st.tuples(st.integers(0, 2), st.integers(0, 2))
    kwargs = dict(stride=data.draw(st.tuples(*[st.integers(1, 3)] * ndim)),
                  padding=data.draw(st.tuples(*[pairs] * ndim)),
                  dilation=data.draw(st.tuples(*[st.integers(1, 2)] * ndim)))
    symbolic = data.draw(st.booleans())
    shape = None if symbolic else (2, 2 * groups, *data.draw(
        st.tuples(*[st.integers(4, 9)] * ndim)))
    weight = None if symbolic else (2 * groups, 2, *data.draw(
        st.tuples(*[st.integers(1, 3)] * ndim)))
    builder = data.draw(st.sampled_from(["conv", "unfold"]))
    try:
        if builder == "conv":
            diagram = ops.conv(shape, weight, ndim=ndim, groups=groups,
                               bias=data.draw(st.booleans()), **kwargs)
        else:
            diagram = ops.unfold(shape, weight[2:] if weight else (2,) * ndim, ndim=ndim,
                                 **kwargs)
    except tndiag.InvalidArgumentError:
        assume(False)
    _roundtrip(diagram)


@settings(max_examples=500)
@given(diagrams())
def test_random_diagrams_round_trip(diagram):
    _roundtrip(diagram)


@pytest.mark.parametrize("pipeline", [
    "differentiate{wrt=W},simplify", "differentiate{wrt=X}", "vjp{wrt=X},simplify",
    "jvp{wrt=W}", "canonicalize", "simplify", "dense", "delta-pruning", "squeeze",
    "merge-parallel-legs", "mixed-dense", "sum-out"])
def test_pass_results_round_trip(pipeline):
    """What ``tndiag derive`` prints: the text of a transformed corpus diagram parses back."""
    from tndiag.passes import run_pipeline

    transformed = 0
    for _, thunk in CORPUS:
        try:
            result = run_pipeline(thunk(), pipeline)
        except (tndiag.InvalidArgumentError, tndiag.UnknownNameError):  # does not apply here
            continue
        _roundtrip(getattr(result, "diagram", result))
        transformed += 1
    assert transformed >= len(CORPUS) // 2
