"""The tensor-dropout experiments: models, measurements, the slice decomposition, the runs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import tndiag.nn
from tests.notebooks import run_notebook
from tndiag.bench import dropout, dropout_train
from tndiag.bench.dropout_models import (
    SavedBytes,
    allcnnc,
    capture,
    crs_dropout,
    random_labels,
    restore_crs,
    sample_image_batch,
)
from tndiag.bench.dropout_slices import check_draw, slice_contributions, sliced_errors
from tndiag.functional import conv_weight_vjp

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


# -- the network and the data -------------------------------------------------------------------


def test_allcnnc_is_deepobs_all_cnn_c():
    model = allcnnc()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0])
            for c in convs] == [(3, 96, 3, 1, 1), (96, 96, 3, 1, 1), (96, 96, 3, 2, 0),
                                (96, 192, 3, 1, 1), (192, 192, 3, 1, 1), (192, 192, 3, 2, 0),
                                (192, 192, 3, 1, 0), (192, 192, 1, 1, 0), (192, 100, 1, 1, 0)]
    pads = [m.padding for m in model.modules() if isinstance(m, nn.ZeroPad2d)]
    assert pads == [(0, 1, 0, 1)] * 2  # TensorFlow's 'same' for the stride-2 layers
    cases = capture(model, torch.randn(2, 3, 32, 32), random_labels(2))
    assert [c.grad_output.shape[-1] for c in cases] == [32, 32, 16, 16, 16, 8, 6, 6, 6]


def test_capture_matches_autograd_and_torch_weight_gradient():
    model = allcnnc().double()
    x, y = torch.randn(2, 3, 32, 32, dtype=torch.float64), random_labels(2)
    cases = capture(model, x, y)
    params = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), params)
    for case, g in zip(cases, grads):
        stride, padding, dilation, groups = case.hyper
        ref = torch.nn.grad.conv2d_weight(case.input, case.weight_shape, case.grad_output,
                                          stride, padding, dilation, groups)
        assert torch.allclose(case.weight_grad, g, atol=1e-12)
        assert torch.allclose(ref, g, atol=1e-10)


def test_sample_images_are_normalised_crops():
    x = sample_image_batch(256, seed=3)
    assert x.shape == (256, 3, 32, 32)
    assert not torch.equal(sample_image_batch(5, seed=1), sample_image_batch(5, seed=2))
    assert torch.equal(sample_image_batch(5, seed=1), sample_image_batch(5, seed=1))
    assert x.mean().abs() < 0.5 and 0.5 < x.std() < 1.5  # normalised by photo statistics


# -- measured bytes -----------------------------------------------------------------------------


def test_saved_bytes_per_layer_and_for_each_swap():
    model, x = allcnnc(), torch.randn(8, 3, 32, 32)
    with SavedBytes(model) as exact:
        model(x)
    size = x.element_size()
    padded = 8 * 96 * 33 * 33 * size  # the stride-2 layer keeps its zero-padded input
    assert exact.per_layer["0"] == x.numel() * size and exact.per_layer["5"] == padded
    with SavedBytes(crs_dropout(model, 0.25)) as crs:
        model(x)
    restore_crs(model)
    assert crs.per_layer == exact.per_layer  # CRS must keep the whole input
    torch.manual_seed(0)
    with SavedBytes(tndiag.nn.tensor_dropout(model, keep=0.25, sample="spatial")) as spatial:
        model(x)
    tndiag.nn.restore(model)
    assert sum(spatial.per_layer.values()) < 0.6 * sum(exact.per_layer.values())
    assert type(model[0]) is nn.Conv2d  # restored


# -- the slice decomposition is the estimator ---------------------------------------------------


@pytest.mark.parametrize("method", ["spatial", "channel"])
def test_slices_sum_to_the_gradient_and_reproduce_draws(method):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 9, 7, dtype=torch.float64)
    conv = nn.Conv2d(4, 6, 3, stride=(2, 1), padding=(1, 0), groups=2).double()
    (case,) = capture(nn.Sequential(conv, nn.Flatten()), x, torch.randint(6, (3,)))
    parts = slice_contributions(case, method)
    assert torch.allclose(parts.sum(0), case.weight_grad, atol=1e-12)
    gen = torch.Generator().manual_seed(4)
    assert check_draw(case, parts, method, 0.4, gen) < 1e-12
    # the squared errors of draws equal those of conv_weight_vjp with the same generator
    sq = sliced_errors(parts, case.weight_grad, method, 0.4, 5, 2,
                       torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    stride, padding, dilation, groups = case.hyper
    direct = [float((conv_weight_vjp(case.input, case.weight_shape, case.grad_output, stride,
                                     padding, dilation, groups, keep=0.4, sample=method,
                                     generator=gen) - case.weight_grad).square().sum())
              for _ in range(5)]
    assert sq == pytest.approx(direct, rel=1e-9, abs=1e-12)


def test_channel_error_at_one_half_is_exactly_one():
    """(1/p − 1)² = 1 at p = 1/2: every draw of channel sampling has relative error 1."""
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 3, 3).double()
    (case,) = capture(nn.Sequential(conv, nn.Flatten()),
                      torch.randn(2, 5, 6, 6, dtype=torch.float64), torch.randint(3, (2,)))
    parts = slice_contributions(case, "channel")
    sq = sliced_errors(parts, case.weight_grad, "channel", 0.5, 20, 1,
                       torch.Generator().manual_seed(0))
    assert sq == pytest.approx([float(case.weight_grad.square().sum())] * 20, rel=1e-12)


# -- the runs -----------------------------------------------------------------------------------


def test_paper_dropout_small_run(tmp_path):
    out = tmp_path / "r.json"
    code = subprocess.run([sys.executable, "-m", "tndiag", "paper", "dropout", "--small",
                           "--quiet", "--json", str(out), "--plot", str(tmp_path)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert code.returncode == 0, code.stderr
    assert "relative error of all weight gradients, data: gaussian" in code.stdout
    r = json.loads(out.read_text())
    assert len(r["errors"]) == 2 * 3 * 2  # data × methods × keeps
    assert max(p["check"] for p in r["errors"]) < 1e-4  # slice sums = conv_weight_vjp
    mem = {(m["method"], m["keep"]): m["conv_bytes"] for m in r["memory"]}
    assert mem[("crs", 0.25)] == mem[("exact", 1.0)]
    assert mem[("spatial", 0.25)] < mem[("spatial", 0.5)] < mem[("exact", 1.0)]
    assert {(t["method"], t["keep"]) for t in r["time"]} == {
        (m, k) for m in dropout.METHODS for k in (0.25, 0.5)}
    for name in ("dropout-error.png", "dropout-layers.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_training_small_run():
    config = dropout_train.TrainConfig(**dropout_train.SMALL)
    results = dropout_train.run_training(config)
    runs = {(r["method"], r["keep"]): r for r in results["runs"]}
    assert set(runs) == set(dropout_train.RUNS)
    exact = runs[("exact", 1.0)]
    assert exact["train_loss"][-1] < exact["train_loss"][0]
    assert runs[("spatial", 0.25)]["conv_bytes"] < exact["conv_bytes"]
    assert runs[("crs", 0.25)]["conv_bytes"] == exact["conv_bytes"]
    table = dropout_train.format_training(results)
    assert len(re.findall(r"^\| (exact|spatial|crs) \|", table, re.M)) == 5


def test_images_script_small(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_dropout_images.py"),
                           "--small", str(tmp_path)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["dropout-error.png", "dropout-layers.png", "dropout-training.png"]
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_dropout_images.py"),
                            str(tmp_path / "re"), "--results",
                            str(tmp_path / "dropout-figure.json"),
                            str(tmp_path / "dropout-training.json")],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "re").glob("*.png"))) == 3
    for name in names:  # the committed full-size figures exist
        assert (ROOT / "docs" / "images" / name).stat().st_size > 10_000


def test_example_small_runs():
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "tensor_dropout.py"),
                           "--small"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    errors = dict(re.findall(r"(\w+) keep=0\.5: relative error of one draw ([0-9.]+)",
                             done.stdout))
    assert set(errors) == {"spatial", "channel", "crs"}
    assert float(errors["channel"]) == pytest.approx(1.0, abs=1e-3)
    assert "tensor_dropout(keep=0.25): the convolutions save" in done.stdout


def test_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("03-tensor-dropout.ipynb", tmp_path, monkeypatch)
    text = "".join(o.get("text", "") for o in outputs)
    assert re.search(r"channel: relative error at keep 0.25, 0.5, 0.75 = \[[0-9.]+, 1\.0,", text)
    assert "crs 0.25: convolutions save" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3
