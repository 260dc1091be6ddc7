"""The fused ``window-sum`` step: every summed pattern of one tensor in one step (float64).

Oracles: the unfolded input from the definitions (``F.conv`` with an identity kernel) for
KFAC-reduce, the dense evaluator (``lowerings=()``: dense Π contracted by einsum) for
transposed layers and random diagrams, and the count matrix built entry by entry from
``Π[i, o, k] = [i = o·S + k·D − P_l]`` for each kernel stage.
"""

import dataclasses
import math

import pytest
import torch
from diagram_checks import assert_close, conv_cases, torch_conv
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tndiag
from tndiag import ops
from tndiag.backends import kernels, torch_native
from tndiag.backends.routes.window import classes_literal
from tndiag.codegen.cost import kron_applies, window_plan
from tndiag.codegen.lowerings.window_sum import WindowSpec, WindowSums, window_spec
from tndiag.codegen.program import Step, StepKind
from tndiag.codegen.routes import with_route
from tndiag.ir import Graph, Index, reduced_pattern, variable

ROUTES = ("fused", "direct", "classes", "matmul", "kron")


def counts(I, O, K, S, P, D):
    """``Σ_o Π[i, o, k]`` from the definition, entry by entry."""
    return torch.tensor([[float(sum(i == o * S + k * D - P for o in range(O)))
                          for k in range(K)] for i in range(I)], dtype=torch.float64)


def reference(x, kernel, stride, padding, dilation, groups):
    """``1/(N·L²) Σ_n ū ūᵀ`` per group, ū the sum over positions of the unfolded input."""
    C, N = x.shape[1], x.shape[0]
    eye = torch.eye(C * math.prod(kernel), dtype=x.dtype).reshape(-1, C, *kernel)
    case = dict(transposed=False, w_shape=tuple(eye.shape), stride=stride, padding=padding,
                dilation=dilation, groups=1, x_shape=x.shape)
    U = torch_conv(case)(x, eye).flatten(2)
    u = U.reshape(N, groups, -1, U.shape[-1]).sum(-1)
    return torch.einsum("ngi,ngj->gij", u, u) / (N * U.shape[-1] ** 2)


LAYERS = {  # (input, kernel, stride, padding, dilation, groups)
    "1x1": ((2, 6, 8, 8), (1, 1), 1, 0, 1, 1),
    "1x1-stride2": ((2, 6, 9, 8), (1, 1), 2, 0, 1, 1),
    "patchify": ((2, 3, 8, 12), (4, 4), 4, 0, 1, 1),
    "patchify-ragged": ((2, 3, 10, 9), (2, 2), 2, 0, 1, 1),
    "dense": ((3, 5, 4, 6), (4, 6), 1, 0, 1, 1),
    "3x3-same": ((2, 4, 7, 9), (3, 3), 1, "same", 1, 1),
    "asymmetric-dilated-grouped": ((2, 4, 7, 9), (3, 2), 2, ((1, 0), (2, 1)), (1, 2), 2),
    "1x7": ((2, 4, 9, 11), (1, 7), 1, (0, 3), 1, 1),
    "7x1": ((2, 4, 11, 9), (7, 1), 1, (3, 0), 1, 1),
    "depthwise-strided": ((2, 4, 9, 9), (3, 3), 2, 1, 1, 4),
    "k5-s2-p1": ((3, 2, 11, 10), (5, 5), 2, 1, 1, 1),
    "1d-framing": ((2, 1, 40), (10,), 5, 0, 1, 1),
    "1d-same": ((2, 3, 12), (4,), 1, "same", 2, 1),
    "3d": ((1, 2, 5, 6, 7), (3, 1, 2), (1, 2, 3), ((1, 1), (0, 0), (1, 0)), 1, 2),
    "3d-pointwise": ((2, 3, 4, 3, 5), (1, 1, 1), 1, 0, 1, 1),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_kfac_reduce_is_one_window_sum_then_gram(name, route):
    shape, kernel, stride, padding, dilation, groups = LAYERS[name]
    x = torch.randn(shape, dtype=torch.float64)
    program = tndiag.compile(ops.kfac_reduce(shape, kernel, stride=stride, padding=padding,
                                             dilation=dilation, groups=groups), route=route)
    assert [s.kind for s in program.steps] == [StepKind.WINDOW_SUM, StepKind.GRAM], str(program)
    assert program.steps[0].route == route
    want = reference(x, kernel, stride, padding, dilation, groups)
    assert_close(program(x).reshape(want.shape), want, f"{name}, route {route}")


@pytest.mark.parametrize("border_rows", [0, 1, 100])
@pytest.mark.parametrize("name", ["3x3-same", "1x7", "k5-s2-p1", "depthwise-strided", "3d"])
def test_border_positions_summed_or_subtracted_one_by_one(name, border_rows, monkeypatch):
    """``taps`` subtracts up to ``BORDER_ROWS`` border positions one view at a time and sums
    longer borders first: every threshold gives the unfolded input's sums."""
    monkeypatch.setattr(kernels, "BORDER_ROWS", border_rows)
    shape, kernel, stride, padding, dilation, groups = LAYERS[name]
    x = torch.randn(shape, dtype=torch.float64)
    program = tndiag.compile(ops.kfac_reduce(shape, kernel, stride=stride, padding=padding,
                                             dilation=dilation, groups=groups), route="direct")
    want = reference(x, kernel, stride, padding, dilation, groups)
    assert_close(program(x).reshape(want.shape), want, f"{name}, BORDER_ROWS {border_rows}")


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (2, 0)])
def test_large_inputs_stream_the_class_sums(stride, padding, monkeypatch):
    """Inputs past :data:`~tndiag.backends.kernels.STREAM_MIN_BYTES` with long rows: the class
    sums go through the channels-last pooling kernel (:func:`~tndiag.backends.kernels.outer_sum`)
    and still equal the unfolded input's sums."""
    shape = (3, 4, 320, 320)  # 9.4 MiB of float64
    x = torch.randn(shape, dtype=torch.float64)
    pooled = []
    pool = torch.nn.functional.avg_pool2d
    monkeypatch.setattr(kernels.F, "avg_pool2d",
                        lambda *a, **kw: pooled.append(a) or pool(*a, **kw))
    program = tndiag.compile(ops.kfac_reduce(shape, 3, stride=stride, padding=padding),
                             route="fused")
    want = reference(x, (3, 3), stride, padding, 1, 1)
    assert_close(program(x).reshape(want.shape), want, f"stride {stride}, padding {padding}")
    assert pooled, "the class sums were not streamed"


@pytest.mark.parametrize("name", ["3x3-same", "1x7", "k5-s2-p1", "3d"])
def test_small_chunks_give_the_same_window_sums(name, monkeypatch):
    """Slicing a leading axis (to keep intermediates small) does not change the sums."""
    shape, kernel, stride, padding, dilation, groups = LAYERS[name]
    step = with_route(tndiag.compile(ops.kfac_reduce(
        shape, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)),
        "fused").steps[0]
    x = torch.randn(step.info.shape, dtype=torch.float64)
    run, whole = torch_native.window_sum_recipe(step)
    monkeypatch.setattr(torch_native, "WINDOW_CHUNK", 1)
    _, sliced = torch_native.window_sum_recipe(step)
    assert sliced[1] is not None and sliced[1][1] == 1  # one row per slice
    assert_close(run(sliced, [x]), run(whole, [x]), name)


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(max_ndim=3))
def test_kfac_reduce_hypothesis_against_the_unfolded_input(case):
    x = torch.randn(case["x_shape"], dtype=torch.float64)
    args = (case["w_shape"][2:], case["stride"], case["padding"], case["dilation"],
            case["groups"])
    program = tndiag.compile(ops.kfac_reduce(x.shape, args[0], stride=args[1],
                                             padding=args[2], dilation=args[3],
                                             groups=args[4]))
    want = reference(x, *args)
    assert_close(program(x).reshape(want.shape), want, str(case))


@settings(max_examples=25, deadline=None)
@given(case=conv_cases(transposed=True, max_ndim=3))
def test_transposed_kfac_reduce_against_the_dense_evaluator(case):
    """Every window-sum route the step offers (forced), the folded scale included."""
    diagram = ops.kfac_reduce(case["x_shape"], case["w_shape"][2:], stride=case["stride"],
                              padding=case["padding"], dilation=case["dilation"],
                              groups=case["groups"], transposed=True,
                              output_padding=case["output_padding"])
    x = torch.randn(case["x_shape"], dtype=torch.float64)
    fast, dense = tndiag.compile(diagram), tndiag.compile(diagram, lowerings=())
    want = dense(x)
    assert_close(fast(x), want, str(case))
    for route in {r for s in fast.steps for r in s.routes}:
        assert_close(tndiag.compile(diagram, route=route)(x), want, f"{case}, route {route}")


@st.composite
def multi_axis_graphs(draw):
    """X with 1–3 summed axes among 2–4 legs, each with its own pattern; output order drawn."""
    rank = draw(st.integers(2, 4))
    summed = sorted(draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=min(3, rank))))
    legs, out, tensors = [], [], []
    for a in range(rank):
        if a not in summed:
            leg = Index(f"c{a}", draw(st.integers(1, 3)))
            legs.append(leg)
            out.append(leg)
            continue
        K, S, D = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        pl, pr = draw(st.integers(0, 2)), draw(st.integers(-1, 2))
        low = max(1, D * (K - 1) + 1 - pl - pr)
        I = draw(st.integers(low, low + 7))
        O = (I + pl + pr - D * (K - 1) - 1) // S + 1
        i, k = Index(f"i{a}", I), Index(f"k{a}", K)
        legs.append(i)
        out.append(k)
        tensors.append(reduced_pattern(f"R{a}", i, k, O, S, pl, pr, D))
    order = draw(st.permutations(out))
    return Graph.of([variable("X", legs), *tensors], list(order))


@settings(max_examples=60, deadline=None)
@given(graph=multi_axis_graphs())
def test_random_multi_axis_window_sums_equal_the_dense_evaluator(graph):
    fast = tndiag.compile(graph)
    assert [s.kind for s in fast.steps].count(StepKind.WINDOW_SUM) == 1, str(fast)
    x = torch.randn([int(s) for s in fast.input_shapes[0]], dtype=torch.float64)
    want = tndiag.compile(graph, lowerings=())(x)
    info = fast.steps[0].info
    want_routes = tuple(r for r in ROUTES if (r != "classes" or _nonempty(info))
                        and (r != "kron" or _trailing(info)))
    assert fast.steps[0].routes == want_routes
    for route in fast.steps[0].routes:
        assert_close(with_route(fast, route)(x), want, route)


def _nonempty(spec):
    return all(first <= last for w in spec.axes for first, last in w.windows)


def _trailing(spec):
    """Whether the summed axes are the tensor's last ones (the ``kron`` route's condition;
    the drawn sizes keep its matrix small)."""
    n = len(spec.shape)
    return sorted(w.axis for w in spec.axes) == list(range(n - len(spec.axes), n))


@st.composite
def window_problems(draw):
    """A tensor shape, its summed axes' specs, and the count matrices from the definition."""
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 3)) for _ in range(rank)]
    axes = sorted(draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=rank)))
    specs, mats = [], []
    for a in axes:
        K, S, D = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        pl, pr = draw(st.integers(0, 2)), draw(st.integers(-1, 2))
        low = max(1, D * (K - 1) + 1 - pl - pr)
        I = shape[a] = draw(st.integers(low, low + 8))
        O = (I + pl + pr - D * (K - 1) - 1) // S + 1
        specs.append(window_spec(a, I, O, K, S, pl, D))
        mats.append(counts(I, O, K, S, pl, D))
    return WindowSums(tuple(shape), tuple(specs)), mats


def _definition(x, spec, mats):
    for w, m in zip(spec.axes, mats):
        x = torch.tensordot(x, m, ([w.axis], [0])).movedim(-1, w.axis)
    return x


@settings(max_examples=80, deadline=None)
@given(problem=window_problems(),
       how=st.sampled_from(["plan", "taps", "classes", "matmul", "view"]),
       chunk=st.booleans(), transpose=st.booleans(), scale=st.sampled_from([1.0, 0.375]))
def test_every_stage_matches_the_count_matrices(problem, how, chunk, transpose, scale):
    """Each stage kind on every axis it applies to, in drawn order, on a (maybe
    non-contiguous) input, whole or in one-row chunks, times the step's scale."""
    spec, mats = problem
    x = torch.randn(spec.shape, dtype=torch.float64)
    if transpose:  # a non-contiguous input with the same shape
        x = x.transpose(0, -1).contiguous().transpose(0, -1)
    want = _definition(x, spec, mats) * scale
    _, (shape, _, stages, factor) = torch_native.fused_window_recipe(
        dataclasses.replace(spec, scale=scale))
    assert factor == scale
    if how != "plan":
        stages = tuple(_stage(how, w) for w in spec.axes)
    free = [a for a in range(len(spec.shape)) if a not in {w.axis for w in spec.axes}]
    plan = (free[0], 1) if chunk and free else None
    got = kernels.run_window_sum((shape, plan, stages, factor), [x])
    assert_close(got, want, str(stages))


@settings(max_examples=80, deadline=None)
@given(problem=window_problems(), transpose=st.booleans(),
       scale=st.sampled_from([1.0, 0.375]), flat=st.booleans())
def test_kron_route_matches_the_count_matrices(problem, transpose, scale, flat):
    """One GEMM with the scaled Kronecker product of the count matrices (the summed axes
    moved last first), on a (maybe non-contiguous, maybe unreshaped) input."""
    spec, mats = problem
    summed = [w.axis for w in spec.axes]
    order = [a for a in range(len(spec.shape)) if a not in summed] + summed
    moved = WindowSums(tuple(spec.shape[a] for a in order), tuple(
        dataclasses.replace(w, axis=order.index(w.axis)) for w in spec.axes), scale)
    assume(kron_applies(moved))  # a count matrix within KRON_ENTRIES
    x = torch.randn(moved.shape, dtype=torch.float64)
    if transpose:
        x = x.transpose(0, -1).contiguous().transpose(0, -1)
    step = Step((0,), "", StepKind.WINDOW_SUM, moved, routes=ROUTES, route="kron")
    run, recipe = torch_native.window_sum_recipe(step)
    assert run is kernels.run_kron
    want = _definition(x, moved, mats) * scale
    free = len(order) - len(summed)
    got = run(recipe, [x.flatten(0, free - 1) if flat and free else x])
    assert_close(got, want, str(moved))


def _stage(how, w):
    if how == "view" and w.uniform:
        return ("view", (torch_native._view_args(w),))
    if how == "matmul":
        return ("matmul", (w.axis, w.size, w.stride, w.windows))
    if how == "classes" and all(first <= last for first, last in w.windows):
        return ("classes", classes_literal(w))
    return ("taps", torch_native._taps_args(w))


def test_plan_per_layer_kind():
    """Whole axes in one sum, strided views for non-overlapping taps, tap sums from the class
    sums (one read) for padded layers, the most shrinking axis first."""
    def plan(shape, kernel, **kw):
        program = tndiag.compile(ops.kfac_reduce(shape, kernel, **kw))
        return tuple(how for how, _ in window_plan(program.steps[0].info)[0])

    assert plan((8, 64, 8, 8), (1, 1)) == ("view",)
    assert plan((8, 64, 56, 56), (1, 1), stride=2) == ("view", "view")
    assert plan((8, 64, 14, 14), (1, 1), stride=2) == ("view",)  # short rows: one view
    assert plan((8, 3, 224, 224), (4, 4), stride=4) == ("view", "view")
    assert plan((8, 64, 56, 56), (3, 3), padding=1)[0] == "taps"
    info = tndiag.compile(ops.kfac_reduce((8, 768, 17, 17), (1, 7), padding=(0, 3))).steps[0].info
    assert window_plan(info)[0][0] == ("view", (3,))  # the 1-tap axis first


def test_large_input_is_sliced_into_small_intermediates():
    """The SINGD layer (128×10×256×256, K = 5, S = 2, P = 1): no intermediate over 1 MiB."""
    step = tndiag.compile(ops.kfac_reduce((128, 10, 256, 256), 5, stride=2, padding=1)).steps[0]
    _, (shape, chunk, stages, _) = torch_native.window_sum_recipe(step)
    axis, rows = chunk
    assert shape == (128, 1, 10, 5, 5) and len(stages) == 2
    assert rows * 10 * 5 * 256 <= torch_native.WINDOW_CHUNK


def test_window_spec_properties():
    w = WindowSpec(0, 9, 2, ((0, 6), (1, 7), (2, 8)))
    assert w.lengths == (4, 4, 4) and w.uniform and w.borders == (1, 0, 1)
    assert WindowSums((3, 9), (WindowSpec(1, 9, 2, w.windows),)).out_shape == (3, 3)


def test_exported_fused_step_runs_the_same_kernel():
    """The ``fused`` route (its scale folded onto the sums) exports as the backend runs it."""
    for diagram in (ops.kfac_reduce((2, 3, 8, 8), 2, stride=2),
                    ops.kfac_reduce((2, 3, 7, 6), 3, padding=1)):
        program = tndiag.compile(diagram, route="fused")
        assert program.steps[0].info.scale != 1 and program.scale == 1
        source = tndiag.export(program)
        assert "def run_window_sum(" in source and "window_taps" in source
        namespace: dict = {}
        exec(compile(source, "<exported>", "exec"), namespace)
        x = torch.randn([int(v) for v in program.input_shapes[0]], dtype=torch.float64)
        assert_close(namespace["forward"](x), program(x), "exported")


def test_every_stage_kind_has_a_kernel_and_a_plan():
    """The stage table is complete: each kind the plan can name has a kernel, and the
    problems below make the plan name each kind."""
    names = set()
    for shape, kernel, kw in [((8, 64, 8, 8), (1, 1), {}), ((8, 3, 64, 64), (7, 7),
                                                            dict(stride=2, padding=3)),
                              ((8, 64, 56, 56), (3, 3), dict(padding=1))]:
        info = tndiag.compile(ops.kfac_reduce(shape, kernel, **kw)).steps[0].info
        names |= {how for how, _ in window_plan(info)[0]}
    assert names == set(kernels.WINDOW_STAGES) == {"view", "taps", "classes", "matmul"}


def test_symbolic_batch_plans_without_pricing_routes():
    """A window-sum step on a tensor with a symbolic leg is planned (cost formulas), its
    routes are not priced (they need concrete sizes)."""
    import sympy

    from tndiag.codegen.compile import plan

    N = sympy.Symbol("N", positive=True, integer=True)
    n, i, k = Index("n", N), Index("i", 8), Index("k", 3)
    graph = Graph.of([variable("X", [n, i]), reduced_pattern("R", i, k, 8, 1, 1, 1, 1)], [n, k])
    (step,) = plan(graph).steps
    assert step.kind is StepKind.WINDOW_SUM and step.flops == 8 * N and step.route == ""


@pytest.mark.parametrize("route", ["fused", "kron"])
@pytest.mark.parametrize("name", ["1x1", "1x1-stride2", "patchify", "3x3-same", "1x7",
                                  "k5-s2-p1", "1d-framing", "3d"])
def test_gradient_through_the_fused_step_matches_the_dense_evaluator(name, route):
    """An input that requires grad (a layer's activation in a hook) is differentiated through
    every stage (and the one GEMM of ``kron``) like the dense einsum program."""
    shape, kernel, stride, padding, dilation, groups = LAYERS[name]
    diagram = ops.kfac_reduce(shape, kernel, stride=stride, padding=padding,
                              dilation=dilation, groups=groups)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    fast, dense = tndiag.compile(diagram, route=route), tndiag.compile(diagram, lowerings=())
    v = torch.randn(fast(x).shape, dtype=torch.float64)
    (got,) = torch.autograd.grad(fast(x), x, v)
    (want,) = torch.autograd.grad(dense(x), x, v)
    assert_close(got, want, name)


def test_kron_route_is_chosen_where_calls_dominate():
    """The cost model runs the one-GEMM route on small inputs with several taps and on 1×1
    layers (a GEMV), the staged ``fused`` route on large inputs; a non-trailing summed axis
    offers no ``kron`` route."""
    def route(shape, kernel, **kw):
        return tndiag.compile(ops.kfac_reduce(shape, kernel, **kw)).steps[0].route

    assert route((1, 2, 8, 8), (3, 3), padding=1) == "kron"
    assert route((32, 1, 28, 28), (5, 5), padding="same") == "kron"
    assert route((32, 192, 8, 8), (1, 1)) == "kron"
    assert route((8, 64, 56, 56), (3, 3), padding=1) == "fused"
    assert route((8, 3, 224, 224), (4, 4), stride=4) == "fused"
    n, i, k = Index("n", 2), Index("i", 8), Index("k", 3)
    graph = Graph.of([variable("X", [i, n]), reduced_pattern("R", i, k, 8, 1, 1, 1, 1)], [n, k])
    assert "kron" not in tndiag.compile(graph).steps[0].routes


@pytest.mark.parametrize("name", ["1x1", "3x3-same", "asymmetric-dilated-grouped", "1d-same", "3d"])
def test_scale_is_folded_into_the_window_sums_before_their_gram(name):
    """KFAC-reduce's 1/(N·O²) becomes √ of it on the window-sum step (printed there), the
    program has no scaling pass left, and the value is the definition's."""
    shape, kernel, stride, padding, dilation, groups = LAYERS[name]
    diagram = ops.kfac_reduce(shape, kernel, stride=stride, padding=padding,
                              dilation=dilation, groups=groups)
    x = torch.randn(shape, dtype=torch.float64)
    want = reference(x, kernel, stride, padding, dilation, groups)
    for route in ROUTES:
        program = tndiag.compile(diagram, route=route)
        step = program.steps[0]
        assert program.scale == 1 and step.info.scale != 1, str(program)
        assert f"scale: {step.info.scale} (folded into this step)" in str(program)
        dense = tndiag.compile(diagram, lowerings=())
        assert math.isclose(step.info.scale ** 2, dense.scale, rel_tol=1e-12)
        assert_close(program(x).reshape(want.shape), want, f"{name}, route {route}")


def _window_then_gram(factor):
    """``factor · Σ_n ū ūᵀ`` with ū the window sums of X over one axis: a constant in the
    diagram, which the compiler turns into the program's scale."""
    from tndiag.ir import constant

    n, c, i, k = Index("n", 3), Index("c", 2), Index("i", 7), Index("k", 3)
    c2, k2 = Index("c2", 2), Index("k2", 3)
    i2 = Index("i2", 7)
    return Graph.of([variable("X", [n, c, i]), reduced_pattern("R", i, k, 7, 1, 1, 1, 1),
                     variable("X", [n, c2, i2]), reduced_pattern("R2", i2, k2, 7, 1, 1, 1, 1),
                     constant("s", factor)], [c, k, c2, k2])


@pytest.mark.parametrize("factor", [0.25, -0.25, 1.0])
def test_scale_is_folded_only_when_positive(factor):
    """A negative factor (no real √) or 1 stays the program's; the value is the dense
    evaluator's either way."""
    graph = _window_then_gram(factor)
    program, dense = tndiag.compile(graph), tndiag.compile(graph, lowerings=())
    assert [s.kind for s in program.steps] == [StepKind.WINDOW_SUM, StepKind.GRAM], str(program)
    folded = program.steps[0].info.scale
    assert (folded, program.scale) == ((0.5, 1.0) if factor == 0.25 else (1.0, factor))
    x = torch.randn(3, 2, 7, dtype=torch.float64)
    assert_close(program(x), dense(x), f"factor {factor}")


def test_scale_stays_when_the_window_sums_are_not_the_gram_operand():
    """Window sums that end the program (no Gram) keep the scale on the program."""
    from tndiag.ir import constant

    n, i, k = Index("n", 2), Index("i", 8), Index("k", 3)
    graph = Graph.of([variable("X", [n, i]), reduced_pattern("R", i, k, 8, 1, 1, 1, 1),
                      constant("s", 0.25)], [n, k])
    program = tndiag.compile(graph)
    assert program.scale == 0.25 and program.steps[0].info.scale == 1
    x = torch.randn(2, 8, dtype=torch.float64)
    assert_close(program(x), tndiag.compile(graph, lowerings=())(x), "no gram")


@settings(max_examples=60, deadline=None)
@given(summed=st.integers(1, 5), batch=st.integers(1, 3), kept=st.lists(st.integers(1, 3),
                                                                         min_size=1, max_size=3),
       permuted=st.booleans())
def test_gram_of_rows_matches_einsum(summed, batch, kept, permuted):
    """``run_gram_rows``: per batch entry ``Mᵀ M`` of a tensor laid out (summed, batch, kept),
    against einsum; with an output permutation too."""
    f = math.prod(kept)
    t = torch.randn(summed, batch, *kept, dtype=torch.float64)
    shape = (batch, *kept, *kept)
    out_perm = tuple(reversed(range(len(shape)))) if permuted else None
    want = torch.einsum("nbi,nbj->bij", t.reshape(summed, batch, f), t.reshape(summed, batch, f))
    want = want.reshape(shape) if out_perm is None else want.reshape(shape).permute(out_perm)
    got = kernels.run_gram_rows((summed, batch, f, shape, out_perm), [t])
    assert_close(got, want, "gram rows")


def test_kfac_reduce_gram_reads_the_window_sums_in_place():
    """KFAC-reduce's Gram step takes the window sums (samples first) without a permuting copy;
    a KFC Gram (positions last) keeps the general kernel."""
    program = tndiag.compile(ops.kfac_reduce((4, 6, 8, 8), 3, padding=1, groups=2))
    assert torch_native.gram_recipe(program.steps[-1])[0] is kernels.run_gram_rows
    from tndiag.codegen.lowering import STRUCTURED  # KFC's gram step: without patch-gram

    kfc = tndiag.compile(ops.kfc((2, 3, 6, 6), 3),
                         lowerings=tuple(n for n in STRUCTURED if n != "patch-gram"))
    assert torch_native.gram_recipe(kfc.steps[-1])[0] is kernels.run_gram


def test_exported_kron_route_runs_the_same_kernel():
    """The ``kron`` route with its folded scale exports as the backend runs it."""
    program = tndiag.compile(ops.kfac_reduce((2, 3, 7, 6), 3, padding=1), route="kron")
    source = tndiag.export(program)
    assert "def run_kron(" in source and "run_gram_rows" in source
    namespace: dict = {}
    exec(compile(source, "<exported>", "exec"), namespace)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    assert_close(namespace["forward"](x), program(x), "exported kron")
