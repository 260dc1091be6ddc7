"""The paper's four variants (TN, TN+opt, tndiag, PT) agree with torch, and the check
against PT drops a variant that does not."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tndiag.bench.diagrams import layer_from_json
from tndiag.bench.impls import make_inputs
from tndiag.bench.paper_runtime import CATEGORIES, load_layers, select_layers, unfolded_bytes
from tndiag.bench.variants import (
    PAPER_OPS,
    VARIANTS,
    build_variants,
    check_against_pt,
    planned_bytes,
)
from tndiag.errors import InvalidArgumentError


def row(**kw):
    base = {"net": "t", "name": "c", "ndim": 2, "batch": 2, "c_in": 4, "c_out": 6,
            "input": [7, 6], "kernel": [3, 2], "stride": [1, 1], "padding": [1, 0],
            "dilation": [1, 1], "groups": 1, "category": "general"}
    base.update(kw)
    return base


GRID = [
    row(),
    row(stride=[2, 1], dilation=[1, 2], groups=2),
    row(padding="same", kernel=[4, 3]),                       # asymmetric 'same'
    row(padding=[[0, 1], [0, 1]], stride=[2, 2], kernel=[3, 3], input=[8, 8]),  # DeepOBS
    row(kernel=[2, 2], stride=[2, 2], padding=[0, 0], input=[8, 6], category="dense"),
    row(kernel=[1, 1], stride=[2, 2], padding=[0, 0], input=[8, 8], category="down-sampling"),
    row(kernel=[1, 3], stride=[1, 1], padding=[0, 1], category="mixed"),
    row(c_in=6, c_out=6, groups=6, kernel=[3, 3], padding=[1, 1]),  # depthwise
]


def _reference(op, layer, t):
    """The op from its definition with torch (float64), independent of tndiag.bench."""
    from tndiag.bench.diagrams import explicit_padding

    x, w, v = t["X"].detach().requires_grad_(True), t["W"].detach().requires_grad_(True), t["V"]
    nd = layer["ndim"]
    flat = [p for lr in reversed(explicit_padding(layer)) for p in lr]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    y = conv(F.pad(x, flat), w, None, stride=layer["stride"], dilation=layer["dilation"],
             groups=layer["groups"])
    if op == "forward":
        return y.detach()
    if op in ("input-vjp", "weight-vjp"):
        (g,) = torch.autograd.grad(y, x if op == "input-vjp" else w, v)
        return g
    # KFC / KFAC-reduce from the unfolded input: one [C/G·∏K]² block per group
    eye = torch.eye(layer["c_in"] // layer["groups"] * _prod(layer["kernel"]), dtype=x.dtype)
    patches = eye.reshape(-1, layer["c_in"] // layer["groups"], *layer["kernel"])
    blocks = []
    for g in range(layer["groups"]):
        cin = layer["c_in"] // layer["groups"]
        xg = F.pad(x.detach()[:, g * cin:(g + 1) * cin], flat)
        u = conv(xg, patches, None, stride=layer["stride"], dilation=layer["dilation"])
        u = u.flatten(2)  # [N, F, O]
        if op == "kfc":
            blocks.append(torch.einsum("nfo,ngo->fg", u, u) / x.shape[0])
        else:
            m = u.mean(-1)
            blocks.append(m.T @ m / x.shape[0])
    return torch.stack(blocks) if layer["groups"] > 1 else blocks[0]


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


def _check_all(op, r):
    layer = layer_from_json(r)
    t = make_inputs(layer, "cpu", torch.float64)
    variants = build_variants(op, layer, t, 1 << 30)
    assert list(variants.impls) == list(VARIANTS) and not variants.skipped, variants.errors
    ref = _reference(op, layer, t)
    for name, fn in variants.impls.items():
        got = fn()
        torch.testing.assert_close(got.reshape(ref.shape), ref, rtol=1e-9, atol=1e-9,
                                   msg=lambda m, n=name: f"{op} {n}: {m}")
    assert check_against_pt(variants) and not variants.errors


@pytest.mark.parametrize("op", PAPER_OPS)
@pytest.mark.parametrize("r", GRID, ids=range(len(GRID)))
def test_every_variant_matches_torch_on_the_grid(op, r):
    _check_all(op, r)


@st.composite
def layers(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    same = draw(st.booleans())
    stride = [1] * nd if same else [draw(st.integers(1, 3)) for _ in range(nd)]
    padding = "same" if same else [[draw(st.integers(0, 2)), draw(st.integers(0, 2))]
                                   for _ in range(nd)]
    size = [draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 5))
            for k, d in zip(kernel, dilation, strict=True)]
    return row(ndim=nd, batch=draw(st.integers(1, 3)), c_in=2 * groups, c_out=2 * groups,
               groups=groups, input=size, kernel=kernel, stride=stride, padding=padding,
               dilation=dilation)


@settings(max_examples=25)
@given(layers(), st.sampled_from(PAPER_OPS))
def test_every_variant_matches_torch_on_drawn_layers(r, op):
    _check_all(op, r)


@pytest.mark.parametrize("variant", ["TN", "TN+opt", "tndiag"])
@pytest.mark.parametrize("fault", ["perturbed", "raises", "misshaped"])
def test_check_against_pt_drops_a_wrong_variant(variant, fault):
    layer = layer_from_json(row())
    variants = build_variants("kfc", layer, make_inputs(layer, "cpu", torch.float32), 1 << 30)
    good = variants.impls[variant]

    def bad():
        if fault == "raises":
            raise RuntimeError("boom")
        value = good()
        return value * 1.01 if fault == "perturbed" else value[..., :-1]
    variants.impls[variant] = bad
    errors = check_against_pt(variants)
    assert variant not in variants.impls and set(variants.impls) == set(VARIANTS) - {variant}
    message = variants.errors[variant]
    if fault == "perturbed":
        assert message.startswith("mismatch: max error") and errors[variant] > 0
    else:
        assert ("boom" if fault == "raises" else "not shaped like PT") in message


def test_float32_tolerance_accepts_rounding():
    layer = layer_from_json(row(batch=3))
    variants = build_variants("weight-vjp", layer,
                              make_inputs(layer, "cpu", torch.float32), 1 << 30)
    errors = check_against_pt(variants)
    assert not variants.errors and set(errors) == {"TN", "TN+opt", "tndiag"}


def test_budget_skips_the_einsum_variants_and_says_why():
    layer = layer_from_json(row())
    t = make_inputs(layer, "cpu", torch.float32)
    variants = build_variants("forward", layer, t, budget_bytes=16)
    assert set(variants.impls) == {"tndiag", "PT"}
    assert set(variants.skipped) == {"TN", "TN+opt"}
    assert "dense Π" in variants.skipped["TN"] and "> budget" in variants.skipped["TN"]


def test_planned_bytes_counts_the_dense_patterns():
    import tndiag
    from tndiag.bench.diagrams import forward

    layer = layer_from_json(row())
    program = tndiag.compile(forward(layer), lowerings=())
    peak, pi = planned_bytes(program, 8)
    assert pi == 8 * (7 * 7 * 3 + 6 * 5 * 2)  # Π1 [I, O, K] + Π2
    assert peak >= pi


def test_unknown_op_is_an_invalid_argument():
    layer = layer_from_json(row())
    with pytest.raises(InvalidArgumentError, match="unfold"):
        build_variants("unfold", layer, make_inputs(layer, "cpu", torch.float32), 1)


def test_unfolded_bytes_is_the_size_of_f_unfold():
    layer = layer_from_json(row(padding=[1, 1], stride=[2, 1]))
    x = make_inputs(layer, "cpu", torch.float32)["X"]
    u = F.unfold(x, (3, 2), padding=(1, 1), stride=(2, 1))
    assert unfolded_bytes(layer) == u.numel() * 4


def test_shipped_layers_cover_nine_nets_and_four_categories():
    rows = load_layers()
    assert len(rows) == 130
    assert len({r["net"] for r in rows}) == 9
    assert {r["category"] for r in rows} == set(CATEGORIES)


def test_quick_selection_has_every_category_and_no_extremes():
    rows = load_layers()
    quick = select_layers(rows, quick=True)
    assert [r["category"] for r in quick] == [c for c in CATEGORIES for _ in range(2)]
    assert len({(r["net"], r["name"]) for r in quick}) == len(quick)
    only = select_layers(rows, nets=["resnet18"])
    assert only and all(r["net"] == "resnet18" for r in only)
    with pytest.raises(InvalidArgumentError, match="unknown net"):
        select_layers(rows, nets=["resnet19"])


def test_run_order_by_op_or_by_layer(monkeypatch, tmp_path):
    import json

    from tndiag.bench import paper_runtime

    monkeypatch.setattr(paper_runtime, "measure",
                        lambda op, r, *a, **k: {"op": op, "layer": r["name"]})
    rows = [row(name="a", category="dense"), row(name="b", category="dense"),
            row(name="c", category="general")]
    kw = dict(batch=1, rounds=1, dtype=torch.float32, show_progress=False)
    by_op = paper_runtime.run_runtime(rows, ["forward", "kfc"], **kw)
    assert [(r["op"], r["layer"]) for r in by_op][:3] == [
        ("forward", "a"), ("forward", "b"), ("forward", "c")]
    out = tmp_path / "partial.json"
    by_layer = paper_runtime.run_runtime(rows, ["forward", "kfc"], by_layer=True,
                                         json_path=out, **kw)
    assert [(r["op"], r["layer"]) for r in by_layer][:4] == [
        ("forward", "c"), ("kfc", "c"), ("forward", "a"), ("kfc", "a")]
    assert json.loads(out.read_text()) == by_layer
