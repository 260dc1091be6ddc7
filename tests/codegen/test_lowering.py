"""Every structured lowering, forced on its own, against the dense fallback and torch (float64)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from corpus import CORPUS
from hypothesis import given
from hypothesis import strategies as st

import tndiag
from tndiag import compile, export, ops
from tndiag.bench import diagrams as bd
from tndiag.codegen.lowering import LOWERINGS
from tndiag.codegen.native import KERNELS
from tndiag.ir import KIND_TABLE, Graph, Index, Role, reduced_pattern, variable

DENSE = ()
CONCRETE = [c for c in CORPUS if "symbolic" not in c[0]]


def _labels(program):
    terms = program.terms if hasattr(program, "terms") else (program,)
    return [s.label for t in terms for s in t.steps]


def _same_as_dense(diagram, lowerings=None, args=None):
    fast = compile(diagram, lowerings=lowerings)
    dense = compile(diagram, lowerings=DENSE)
    args = args or [torch.randn(shape) for shape in fast.input_shapes]
    torch.testing.assert_close(fast(*args), dense(*args), rtol=1e-10, atol=1e-10)
    return fast, args


def test_every_kind_has_a_lowering_row():
    assert set(LOWERINGS) == set(KIND_TABLE)


@pytest.mark.parametrize("name,thunk", CONCRETE, ids=[c[0] for c in CONCRETE])
def test_corpus_structured_equals_dense(name, thunk):
    _same_as_dense(thunk())


def _layer(ndim, batch=2, c_in=4, c_out=6, I=7, K=3, stride=1, padding=0, dilation=1,
           groups=1):
    def tup(v):
        return list(v) if isinstance(v, (tuple, list)) else [v] * ndim
    return bd.layer_from_json(dict(
        net="t", name="l", ndim=ndim, batch=batch, c_in=c_in, c_out=c_out, input=tup(I),
        kernel=tup(K), stride=tup(stride), dilation=tup(dilation), groups=groups,
        padding=padding if isinstance(padding, str) else tup(padding)))


def _torch_conv(layer, x, w):
    """torch conv on the explicitly padded input (any padding parity)."""
    pads = bd.explicit_padding(layer)
    xp = F.pad(x, [p for lr in reversed(pads) for p in lr])
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[layer["ndim"]]
    return conv(xp, w, None, layer["stride"], 0, layer["dilation"], layer["groups"])


def _oracles(layer):
    """Inputs and forward / input-VJP / weight-VJP results by torch autograd."""
    x = torch.randn(layer.x_shape, requires_grad=True)
    w = torch.randn(layer.w_shape, requires_grad=True)
    y = _torch_conv(layer, x, w)
    v = torch.randn(y.shape)
    gx, gw = torch.autograd.grad(y, (x, w), v)
    inputs = {"X": x.detach(), "W": w.detach(), "V": v}
    return inputs, {"forward": y.detach(), "input-vjp": gx, "weight-vjp": gw}


def _with_kernel(prog, kernel):
    """``prog`` with its native steps calling ``kernel`` (as if the cost model chose it)."""
    steps = tuple(dataclasses.replace(s, info=dataclasses.replace(s.info, kernel=kernel))
                  if s.kind == "native" else s for s in prog.steps)
    return dataclasses.replace(prog, steps=steps)


def test_every_native_role_has_a_kernel_row():
    assert set(KERNELS) == {"conv", "transpose", "weight"}
    assert all(choices[0] == "" for choices in KERNELS.values())


def test_cost_model_picks_conv_transpose_for_tiny_input_vjps_only():
    """conv_transpose{1,2,3}d where convolution_backward's fixed cost dominates; the export
    makes the same call as the compiled program."""
    tiny = tndiag.vjp(ops.conv((1, 2, 8, 8), (3, 2, 3, 3), padding=1), wrt="X", vector="V")
    large = tndiag.vjp(ops.conv((32, 64, 56, 56), (64, 64, 3, 3), padding=1), wrt="X",
                       vector="V")
    assert [s.info.kernel for s in compile(tiny).steps] == [""]
    assert [s.info.kernel for s in compile(large).steps] == ["input-grad"]
    assert "run_conv_transpose(" in export(tiny).split("# the plan")[1]
    assert "'input-grad'" in export(large).split("# the plan")[1]


def _check_native(layer, op):
    inputs, want = _oracles(layer)
    graph = bd.DIAGRAMS[op](layer)
    prog = compile(graph, lowerings=("native",))
    kind = "conv_transpose" if op == "input-vjp" else "conv"
    suffix = "-weight" if op == "weight-vjp" else ""
    assert _labels(prog) == [f"{kind}{layer['ndim']}d{suffix}"]
    args = {n: inputs[n] for n in prog.inputs}
    got = prog(**args)
    torch.testing.assert_close(got, want[op], rtol=1e-10, atol=1e-10)
    for kernel in KERNELS[prog.steps[0].info.role]:  # every kernel the cost model may pick
        torch.testing.assert_close(_with_kernel(prog, kernel)(**args), want[op], rtol=1e-10,
                                   atol=1e-10)
    dense = compile(graph, lowerings=DENSE)(**args)
    torch.testing.assert_close(got, dense, rtol=1e-10, atol=1e-10)


CONV_GRID = [
    dict(ndim=1), dict(ndim=1, stride=2, padding=1, dilation=2),
    dict(ndim=2, stride=(2, 1), padding=(1, 0), groups=2),
    dict(ndim=2, K=(4, 2), padding="same", dilation=(1, 2)),
    dict(ndim=2, c_in=4, c_out=4, groups=4, padding=1),
    dict(ndim=2, K=1, stride=2), dict(ndim=2, K=(1, 3), padding=(0, 1)),
    dict(ndim=2, I=(6, 9), K=(2, 3), stride=3),
    dict(ndim=3, I=(5, 4, 6), K=(2, 3, 2), stride=(1, 2, 1), dilation=(2, 1, 1)),
]


@pytest.mark.parametrize("cfg", CONV_GRID, ids=str)
@pytest.mark.parametrize("op", ["forward", "input-vjp", "weight-vjp"])
def test_native_conv_family_matches_torch_and_dense(cfg, op):
    _check_native(_layer(**cfg), op)


@st.composite
def conv_layers(draw):
    ndim = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    K = [draw(st.integers(1, 3)) for _ in range(ndim)]
    D = [draw(st.integers(1, 2)) for _ in range(ndim)]
    P = [draw(st.integers(0, 2)) for _ in range(ndim)]
    I = [max(draw(st.integers(2, 7)), d * (k - 1) + 1 - 2 * p) for k, d, p in zip(K, D, P)]
    S = [draw(st.integers(1, 3)) for _ in range(ndim)]
    return _layer(ndim, batch=draw(st.integers(1, 2)), c_in=2 * groups, c_out=2 * groups,
                  I=I, K=K, stride=S, padding=P, dilation=D, groups=groups)


@given(layer=conv_layers(), op=st.sampled_from(["forward", "input-vjp", "weight-vjp"]))
def test_native_conv_family_hypothesis(layer, op):
    _check_native(layer, op)


@pytest.mark.parametrize("output_padding,stride,dilation", [(0, 2, 1), (1, 2, 1), (1, 1, 2),
                                                            (2, 3, 1)])
def test_native_transposed_conv_builder_with_output_padding(output_padding, stride, dilation):
    x, w = torch.randn(2, 4, 5, 4), torch.randn(4, 3, 3, 2)
    graph = ops.conv_transpose(x.shape, w.shape, stride=stride, padding=1,
                               output_padding=output_padding, dilation=dilation, groups=2)
    prog = compile(graph)
    assert _labels(prog) == ["conv_transpose2d"]
    want = F.conv_transpose2d(x, w, None, stride, 1, output_padding, 2, dilation)
    torch.testing.assert_close(prog(x, w), want, rtol=1e-10, atol=1e-10)


def test_recognition_is_structural_not_by_name():
    """Renamed tensors and indices, shuffled tensor order: still one native kernel."""
    graph = ops.conv((2, 4, 9), (6, 2, 3), stride=2, groups=2)
    names = {ix: f"z{n}" for n, ix in enumerate(sorted(graph.indices()))}
    renamed = graph.rename_indices(names)
    renamed = renamed.replace(tensors=[t.replace(name={"X": "B", "W": "A"}.get(t.name, t.name))
                                       for t in reversed(renamed.tensors)])
    prog, _ = _same_as_dense(renamed)
    assert _labels(prog) == ["conv1d"]


@pytest.mark.parametrize("cfg", [dict(ndim=1, K=3, stride=2, padding=1),
                                 dict(ndim=2, K=(3, 2), padding=(1, 0), dilation=(1, 2)),
                                 dict(ndim=2, K=1, stride=2),
                                 dict(ndim=3, I=(4, 5, 3), K=2, stride=(2, 1, 1))], ids=str)
def test_view_lowering_of_unfold_matches_torch_and_dense(cfg):
    layer = _layer(**cfg)
    prog, (x,) = _same_as_dense(bd.unfold(layer), lowerings=("view",))
    views = [s for s in prog.steps if s.kind == "view"]
    assert len(views) == 1 and len(views[0].info.axes) == layer["ndim"]  # one pad, all axes
    assert views[0].label == ("view:slice" if max(layer["kernel"]) == 1 else "view:unfold")
    if layer["ndim"] == 2:
        pads = bd.explicit_padding(layer)
        want = F.unfold(F.pad(x, [p for lr in reversed(pads) for p in lr]), layer["kernel"],
                        layer["dilation"], 0, layer["stride"])
        torch.testing.assert_close(prog(x), want, rtol=0, atol=0)


def _kfc_reference(layer, x, reduce):
    """einconv-convention KFC / KFAC-reduce from an explicit unfold (torch only)."""
    nd, G, N = layer["ndim"], layer["groups"], x.shape[0]
    pads = bd.explicit_padding(layer)
    u = F.pad(x, [p for lr in reversed(pads) for p in lr])
    for d in range(nd):
        u = u.unfold(2 + d, layer["dilation"][d] * (layer["kernel"][d] - 1) + 1,
                     layer["stride"][d])
    u = u[(Ellipsis, *(slice(None, None, dl) for dl in layer["dilation"]))]
    u = u.permute(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))
    u = u.reshape(N, G, -1, u[0, 0].flatten(-nd).shape[-1] if nd else 1)
    if reduce:
        a = u.mean(-1)
        return torch.einsum("ngi,ngj->gij", a, a) / N
    return torch.einsum("ngio,ngjo->gij", u, u) / N


@pytest.mark.parametrize("cfg", [dict(ndim=1, K=3, stride=2, padding=1),
                                 dict(ndim=2, K=(3, 2), padding=(1, 0), dilation=(1, 2),
                                      groups=2)], ids=str)
@pytest.mark.parametrize("reduce", [False, True])
def test_kfc_and_kfac_reduce_lowerings(cfg, reduce):
    layer = _layer(**cfg)
    graph = (bd.kfac_reduce if reduce else bd.kfc)(layer)
    x = torch.randn(layer.x_shape)
    want = _kfc_reference(layer, x, reduce)
    lowerings = ("sum-out", "fold-constant", "window-sum") if reduce else ("view", "gram")
    prog, _ = _same_as_dense(graph, lowerings=lowerings, args=[x])
    labels = _labels(prog)
    if reduce:
        assert [op.lowering for op in prog.operands].count("window-sum") == 2 * layer["ndim"]
        assert "view:unfold" not in labels
    else:
        assert labels[-1] == "gram"
    torch.testing.assert_close(prog(x).reshape(want.shape), want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(compile(graph)(x).reshape(want.shape), want,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride,pad_left,dilation", [(1, 0, 1), (2, 1, 1), (3, 2, 2),
                                                      (1, 3, 1), (1, 1, 4), (2, 0, 3)])
@pytest.mark.parametrize("lowerings,lowering", [(("view",), "reduced-matrix"),
                                                (None, "window-sum")])
def test_reduced_pattern_node_lowerings(stride, pad_left, dilation, lowerings, lowering):
    n, c, i, k = Index("n", 2), Index("c", 3), Index("i", 9), Index("k", 3)
    O = (9 + 2 * pad_left - dilation * 2 - 1) // stride + 1
    R = reduced_pattern("R", i, k, O, stride, pad_left, pad_left, dilation)
    graph = Graph.of([variable("X", [n, c, i]), R], [n, c, k])
    prog, (x,) = _same_as_dense(graph, lowerings=lowerings)
    assert [op.lowering for op in prog.operands] == ["input", lowering]
    xp = F.pad(x, (pad_left, pad_left))
    want = torch.stack([xp[..., kk * dilation::stride][..., :O].sum(-1) for kk in range(3)], -1)
    torch.testing.assert_close(prog(x), want, rtol=1e-10, atol=1e-10)


def test_unrecognised_structure_falls_back_to_dense():
    """The pattern's i leg is on two tensors and its o, k legs are open: nothing structured."""
    n, i, o, k = Index("n", 2), Index("i", 6), Index("o", 4), Index("k", 3)
    from tndiag.ir import pattern
    graph = Graph.of([variable("X", [n, i]), variable("V", [n, i]), pattern("P", i, o, k)],
                     [o, k])
    prog, (x, v) = _same_as_dense(graph)
    assert "dense-pattern" in [op.lowering for op in prog.operands]
    want = torch.stack([(x * v)[:, kk:kk + 4].sum(0) for kk in range(3)], -1)
    torch.testing.assert_close(prog(x, v), want, rtol=1e-10, atol=1e-10)


def test_constant_with_legs_elsewhere_folds_into_the_scale():
    n, i = Index("n", 3), Index("i", 4)
    from tndiag.ir import constant
    graph = Graph.of([variable("X", [n, i]), constant("h", 0.5, [i])], [n])
    prog, (x,) = _same_as_dense(graph, lowerings=("fold-constant",))
    assert prog.scale == 0.5 and len(prog.operands) == 1
    torch.testing.assert_close(prog(x), 0.5 * x.sum(1))


def test_unknown_lowering_name_is_rejected():
    from tndiag import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match="lowerings"):
        compile(ops.conv((1, 1, 4), (1, 1, 2)), lowerings=("warp",))
    assert issubclass(InvalidArgumentError, ValueError)
    _ = Role


def test_kfc_mirror_halves_use_one_unfold_and_a_blocked_symmetric_product():
    """Only one copy of X is viewed (the other is its mirror); F = 288 takes 2 blocks. All
    of it is one ``patch-gram`` step; without that rule, ``view`` and ``gram`` steps."""
    from tndiag.codegen.lowering import STRUCTURED

    layer = _layer(2, batch=2, c_in=32, c_out=4, I=5, K=3, padding=1)
    graph = bd.kfc(layer)
    x = torch.randn(layer.x_shape)
    want = _kfc_reference(layer, x, reduce=False)
    for allowed, last in ((None, "patch-gram"),
                          (tuple(n for n in STRUCTURED if n != "patch-gram"), "gram")):
        prog, _ = _same_as_dense(graph, lowerings=allowed, args=[x])
        lowerings = [op.lowering for op in prog.operands]
        assert lowerings.count("mirror") == 3 and lowerings.count("view") == 2
        assert _labels(prog)[-1] == last
        torch.testing.assert_close(prog(x).reshape(want.shape), want, rtol=1e-10, atol=1e-10)


def test_split_halves_rejects_asymmetric_networks():
    from tndiag.codegen.lowerings.gram import split_halves
    assert split_halves(["ab", "bc"], ["x", "y"], "ac") is None
    assert split_halves(["ab", "bc"], ["x", "x"], "ac") is None  # halves overlap
    assert split_halves(["ab", "cb"], ["x", "x"], "ab") is None  # a kept, its mirror c not
    assert split_halves(["ab", "cb"], ["x", "x"], "ac")[:3] == ([0], [1], "ba")


EXAMPLES = sorted((__import__("pathlib").Path(__file__).resolve().parents[2] / "examples")
                  .glob("*.tnd"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_diagrams_structured_equal_dense(path):
    from tndiag.syntax import parse

    diagram = parse(path.read_text())
    diagram = getattr(diagram, "diagram", diagram)
    _same_as_dense(diagram)


@given(I=st.integers(1, 12), K=st.integers(1, 4), S=st.integers(1, 3), pl=st.integers(0, 3),
       pr=st.integers(-1, 3), D=st.integers(1, 3))
def test_window_sums_match_the_count_matrix_hypothesis(I, K, S, pl, pr, D):
    from hypothesis import assume
    numerator = I + pl + pr - D * (K - 1) - 1
    assume(numerator >= 0)
    O = numerator // S + 1
    n, i, k = Index("n", 3), Index("i", I), Index("k", K)
    R = reduced_pattern("R", i, k, O, S, pl, pr, D)
    graph = Graph.of([variable("X", [n, i]), R], [n, k])
    fast, args = _same_as_dense(graph)
    assert [op.lowering for op in fast.operands] == ["input", "window-sum"]
    counts = compile(graph, lowerings=("view",))
    torch.testing.assert_close(fast(*args), counts(*args), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("K,I", [((4, 4), (8, 12)), ((2, 1), (6, 5)), ((3,), (9,))], ids=str)
def test_dense_pattern_with_open_input_leg_is_a_reshape(K, I):
    """Input VJP of a non-overlapping conv (S = K > 1): the dense rewrite leaves no Π and no
    kernel, one einsum. Identity patterns (K = S = 1) are left to the native kernel (faster
    for 1×1 layers)."""
    layer = _layer(len(K), I=I, K=K, stride=K)
    graph = bd.input_vjp(layer)
    inputs, want = _oracles(layer)
    prog, _ = _same_as_dense(graph, args=[inputs["V"], inputs["W"]])
    reshaped = sum(k != 1 for k in K)
    assert len(prog.rewrites) == reshaped and all(r.startswith("dense") for r in prog.rewrites)
    assert [op.tensor.kind.value for op in prog.operands].count("pattern") == len(K) - reshaped
    if reshaped == len(K):
        assert _labels(prog) == ["einsum"]
    torch.testing.assert_close(prog(V=inputs["V"], W=inputs["W"]), want["input-vjp"],
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("I,K,S,pl,pr", [(1, 1, 3, 2, 0), (2, 2, 1, 3, -1), (5, 2, 2, 0, -1),
                                         (4, 3, 2, 1, 3)])
def test_transposed_native_with_padding_beyond_the_result(I, K, S, pl, pr):
    """Result positions the transposed kernel never reaches are zeros (and crops work)."""
    from tndiag.ir import pattern
    O = (I + pl + pr - (K - 1) - 1) // S + 1
    n, c, d = Index("n", 2), Index("c", 3), Index("d", 2)
    i, o, k = Index("i", I), Index("o", O), Index("k", K)
    graph = Graph.of([variable("V", [n, c, o]), pattern("P", i, o, k, S, pl, pr),
                      variable("W", [c, d, k])], [n, d, i])
    prog, _ = _same_as_dense(graph, lowerings=("native",))
    assert _labels(prog) == ["conv_transpose1d"]


def test_identity_pattern_input_vjp_goes_to_the_native_kernel():
    """1×1 stride-1 input VJP: torch's backward kernel, not the reshape + GEMM route."""
    layer = _layer(2, I=(5, 6), K=(1, 1), stride=(1, 1))
    inputs, want = _oracles(layer)
    prog, _ = _same_as_dense(bd.input_vjp(layer), args=[inputs["V"], inputs["W"]])
    assert not prog.rewrites
    assert _labels(prog) == ["conv_transpose2d"]
    torch.testing.assert_close(prog(V=inputs["V"], W=inputs["W"]), want["input-vjp"],
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("wrt", ["X", "W"])
def test_backward_kernels_with_large_placeholders_match_torch(wrt):
    """convolution_backward's unread argument beyond ``PLACEHOLDER_ELEMENTS`` is one element
    expanded (below, a cached contiguous tensor): both give torch's gradients."""
    from tndiag.backends.kernels import PLACEHOLDER_ELEMENTS

    x = torch.randn(1, 64, 33, 33, dtype=torch.float64, requires_grad=True)
    w = torch.randn(128, 64, 3, 3, dtype=torch.float64, requires_grad=True)
    assert min(x.numel(), w.numel()) > PLACEHOLDER_ELEMENTS
    y = F.conv2d(x, w, None, 2, 1)
    v = torch.randn_like(y)
    want = torch.autograd.grad(y, x if wrt == "X" else w, v)[0]
    prog = compile(tndiag.vjp(ops.conv(tuple(x.shape), tuple(w.shape), stride=2, padding=1),
                              wrt=wrt, vector="V"))
    if wrt == "X":
        assert [s.info.kernel for s in prog.steps] == ["input-grad"]
    args = {"X": x.detach(), "W": w.detach(), "V": v}
    torch.testing.assert_close(prog(**{n: args[n] for n in prog.inputs}), want, rtol=1e-10,
                               atol=1e-10)
