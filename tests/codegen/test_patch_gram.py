"""The ``patch-gram`` lowering rule, the ``shifted`` route's plan and the cost model's choice.

The rule matches KFC's mirrored network (an input and its patterns) and nothing else; the
plan computes every block on and above the diagonal once, each derived block from one
computed before it; the model keeps the ``unfold`` route where the classes save nothing
(1×1, S ≥ K·D) and picks ``shifted`` where they do (3×3 stride 1, the benchmark layers).
"""

import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tndiag
from tndiag import ops
from tndiag.bench.diagrams import kfc as bench_kfc
from tndiag.bench.diagrams import layer_from_json
from tndiag.codegen.cost import patch_gram_seconds
from tndiag.codegen.lowerings.patch_gram import (
    PatchGram,
    flops,
    geometry,
    shifted_flops,
    shifted_plan,
)
from tndiag.codegen.program import StepKind

LAYERS = json.loads((pathlib.Path(__file__).resolve().parents[2] / "benchmarks" /
                     "layers.json").read_text())["layers"]


def _spec(N, C, G, axes):
    """A spec for ``X[N, G·C, *I]`` with per-axis ``(I, K, S, P, D)`` (left padding P)."""
    full = []
    for I, K, S, P, D in axes:
        O = (I + 2 * P - D * (K - 1) - 1) // S + 1
        full.append((I, O, K, S, P, D))
    Ks = tuple(a[2] for a in full)
    return PatchGram(tuple(range(3 + len(axes))), N, G, C, tuple(full), (G, C, *Ks, C, *Ks),
                     tuple(range(3 + 2 * len(axes))))


def _step(diagram):
    (step,) = [s for s in tndiag.compile(diagram).steps if s.kind is StepKind.PATCH_GRAM]
    return step


def test_kfc_is_one_patch_gram_step_with_both_routes():
    program = tndiag.compile(ops.kfc((2, 6, 9, 9), 3, padding=1, groups=2))
    (step,) = program.steps
    assert step.label == "patch-gram" and step.routes == ("unfold", "shifted")
    assert "route: " in str(program)
    spec = step.info
    assert (spec.n, spec.g, spec.c, spec.taps) == (2, 2, 3, 9)
    assert spec.axes == ((9, 9, 3, 1, 1, 1),) * 2


def test_other_mirrored_networks_keep_their_programs():
    """KFAC-reduce (summed patterns), transposed KFC (patterns the other way) and a plain
    Gram of a variable have no patch-gram step."""
    for diagram in (ops.kfac_reduce((2, 3, 8, 8), 3),
                    ops.kfc((2, 3, 5), 2, transposed=True, stride=2)):
        kinds = {s.kind for s in tndiag.compile(diagram).steps}
        assert StepKind.PATCH_GRAM not in kinds and kinds


def test_three_by_three_stride_one_has_thirteen_classes():
    blocks, base, derived = shifted_plan(_spec(8, 4, 1, [(6, 3, 1, 1, 1)] * 2))
    assert (base, derived, len(blocks)) == (13, 32, 45)
    assert shifted_flops(_spec(8, 64, 1, [(56, 3, 1, 1, 1)] * 2)) * 3 < flops(
        _spec(8, 64, 1, [(56, 3, 1, 1, 1)] * 2))


@pytest.mark.parametrize("axes", [[(8, 1, 1, 0, 1)] * 2, [(8, 2, 2, 0, 1)] * 2,
                                  [(12, 3, 3, 0, 1)], [(9, 2, 3, 1, 1), (9, 1, 2, 0, 1)]])
def test_no_class_has_two_blocks_when_s_is_at_least_k_d(axes):
    """1×1 and S ≥ K·D: every tap has its own phase, so every block is a base."""
    _, base, derived = shifted_plan(_spec(2, 3, 1, axes))
    taps = 1
    for _, K, *_ in axes:
        taps *= K
    assert derived == 0 and base == taps * (taps + 1) // 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 4), st.integers(1, 3),
                          st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=3))
def test_plan_computes_each_upper_block_once_from_earlier_ones(axes):
    axes = [(I, K, S, P, D) for I, K, S, P, D in axes if I + 2 * P >= D * (K - 1) + 1]
    if not axes:
        return
    spec = _spec(2, 2, 1, axes)
    blocks, base, derived = shifted_plan(spec)
    pairs = [(b[1], b[2]) for b in blocks]
    taps = spec.taps
    assert sorted(pairs) == [(i, j) for i in range(taps) for j in range(i, taps)]
    Q, O = geometry(spec)[:2]
    seen = set()
    for b in blocks:
        if b[0] == "derive":
            assert b[3] in seen and 0 < 2 * b[7] < O[b[6]]
            (_, a), (_, c) = b[4], b[5]
            assert a[b[6]] + O[b[6]] + b[7] <= Q[b[6]] and c[b[6]] + O[b[6]] + b[7] <= Q[b[6]]
        seen.add((b[1], b[2]))
    assert base + derived == len(blocks)


SAVES_NOTHING = ["all-cnn-c/conv8_1x1", "resnet18/layer2.shortcut", "convnext-base/stem",
                 "convnext-base/downsample"]
SHIFTED = ["resnet18/layer1.conv", "resnext101/layer1.conv2", "mobilenetv2/dw3x3",
           "convnext-base/dwconv7", "alexnet/conv2", "inceptionv3/conv7x1"]


@pytest.mark.parametrize("name", SAVES_NOTHING + SHIFTED)
def test_model_keeps_unfold_where_classes_save_nothing(name):
    (layer,) = [layer_from_json(x) for x in LAYERS if f"{x['net']}/{x['name']}" == name]
    step = _step(bench_kfc(layer))
    assert step.route == ("unfold" if name in SAVES_NOTHING else "shifted")
    faster = patch_gram_seconds(step.info, "shifted") < patch_gram_seconds(step.info, "unfold")
    assert faster == (name in SHIFTED)


def test_one_by_one_layers_offer_the_batched_route():
    """1×1, stride 1, no padding: ``X_n X_nᵀ`` without a copy, where the model finds it
    cheaper (few channels, long rows: MobileNetV2's expansion) — not with many channels."""
    (pw,) = [layer_from_json(x) for x in LAYERS if x["name"] == "pw_expand"]
    step = _step(bench_kfc(pw))
    assert step.routes == ("unfold", "shifted", "batched") and step.route == "batched"
    assert _step(ops.kfc((8, 1024, 14, 14), 1)).route == "unfold"
    assert "batched" not in _step(ops.kfc((8, 24, 9, 9), 1, stride=2)).routes
    assert "batched" not in _step(ops.kfc((8, 24, 9, 9), 1, padding=1)).routes


def test_tiny_kfc_keeps_the_unfold_route():
    """The shifted route issues many small calls: never chosen on a tiny input."""
    assert _step(ops.kfc((1, 2, 5, 5), 3, padding=1)).route == "unfold"
