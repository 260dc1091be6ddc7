"""The tuning modes, the measured-winner cache (a temporary cache directory per test) and
``tndiag tune``. Nothing here asserts on a time: only on what is stored and what runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tndiag
from tndiag import ops
from tndiag.backends import tune as backend_tune
from tndiag.backends.tune import context_of
from tndiag.codegen import tuning
from tndiag.codegen.routes import steps_of
from tndiag.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[1]
#: a 1-d strided convolution: its steps offer routes native and gemm
SHAPES = ((2, 1, 40), (3, 1, 10))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tndiag.codegen.clear_cache()
    yield tmp_path / "cache"
    tndiag.set_tuning("model")
    tndiag.codegen.clear_cache()


def _diagram():
    return ops.conv_input_vjp(*SHAPES, stride=5)


def _args(program, dtype=torch.float64):
    return [torch.randn([int(v) for v in s], dtype=dtype) for s in program.input_shapes]


def test_cache_lives_under_xdg_cache_home(cache_dir):
    assert tuning.cache_path() == cache_dir / "tndiag" / "tuning.json"


def test_set_tuning_checks_the_mode():
    with pytest.raises(InvalidArgumentError, match="'fast'"):
        tndiag.set_tuning("fast")
    with pytest.raises(InvalidArgumentError, match="tune"):
        tndiag.compile(_diagram(), tune="yes")
    tndiag.set_tuning("off")
    assert tndiag.get_tuning() == "off"


def test_modes_choose_routes():
    (step,) = tndiag.compile(_diagram()).steps
    assert step.routes == ("native", "gemm") and step.route in step.routes and not step.tune
    tndiag.set_tuning("off")
    (off,) = tndiag.compile(_diagram()).steps
    assert off.route == "" and off.routes == step.routes
    tndiag.set_tuning("measure")
    (measured,) = tndiag.compile(_diagram()).steps
    assert measured.tune
    (model,) = tndiag.compile(_diagram(), tune=False).steps
    assert not model.tune


def test_measured_winner_is_stored_and_reused(cache_dir, monkeypatch):
    program = tndiag.compile(_diagram(), tune=True)
    args = _args(program)
    want = tndiag.compile(_diagram(), route="native")(*args)
    torch.testing.assert_close(program(*args), want)
    data = json.loads(tuning.cache_path().read_text())
    (per_step,) = data["entries"].values()
    (entry,) = per_step.values()
    assert entry["winner"] in ("native", "gemm") and set(entry["times"]) == {"native", "gemm"}
    assert entry["dtype"] == "float64" and entry["device"] == "cpu"
    assert "measured (float64, cpu" in str(program)
    # a fresh program in measure mode reads the winner instead of measuring again
    tndiag.codegen.clear_cache()
    monkeypatch.setattr(backend_tune, "measure_step", _never)
    again = tndiag.compile(_diagram(), tune=True)
    assert again is not program
    torch.testing.assert_close(again(*args), want)


def test_routes_with_large_temporaries_are_not_measured(cache_dir, monkeypatch):
    """Over ``MAX_TEMPORARY_BYTES`` of modelled temporaries a route is left out of the
    measurement (the modelled choice is always measured), stored and printed as such."""
    diagram = ops.conv_weight_vjp((2, 3, 9, 9), (4, 3, 3, 3), padding=1)  # native, gemm, rows
    (step,) = tndiag.compile(diagram).steps
    assert step.route == "native" and set(step.routes) == {"native", "gemm", "rows"}
    monkeypatch.setattr(backend_tune, "MAX_TEMPORARY_BYTES", 0)
    ran = []
    real = backend_tune.PREPARERS[step.kind]
    monkeypatch.setitem(backend_tune.PREPARERS, step.kind,
                        lambda s: ran.append(s.route) or real(s))
    program = tndiag.compile(diagram, tune=True)
    args = _args(program)
    torch.testing.assert_close(program(*args), tndiag.compile(diagram, route="native")(*args))
    assert set(ran) == {"native"}
    (per_step,) = json.loads(tuning.cache_path().read_text())["entries"].values()
    (entry,) = per_step.values()
    assert set(entry["times"]) == {"native"} and set(entry["skipped"]) == {"gemm", "rows"}
    assert "rows not measured (" in str(program) and "MiB of temporaries)" in str(program)


def _never(step, taken):
    raise AssertionError("measured again although the cache has the winner")


def test_winner_persists_across_processes(cache_dir):
    code = ("import torch, tndiag; from tndiag import ops; "
            f"torch.set_num_threads({torch.get_num_threads()}); "
            f"p = tndiag.compile(ops.conv_input_vjp(*{SHAPES!r}, stride=5), tune=True); "
            "p(*[torch.randn([int(v) for v in s]) for s in p.input_shapes])")
    env = {"XDG_CACHE_HOME": str(cache_dir), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
    (step,) = tndiag.compile(_diagram(), tune=True).steps
    context = context_of(torch.ones(1, dtype=torch.float32))
    assert tuning.lookup(step, context) in step.routes


def test_other_torch_version_or_device_does_not_match():
    (step,) = tndiag.compile(_diagram(), tune=True).steps
    old = dict(context_of(torch.ones(1)), torch="0.0")
    tuning.record(step, old, {"native": 2.0, "gemm": 1.0})
    assert tuning.lookup(step, old) == "gemm"
    assert tuning.lookup(step, context_of(torch.ones(1))) is None
    assert tuning.lookup(step, dict(old, device="cuda:some gpu")) is None
    tuning.record(step, context_of(torch.ones(1)), {"native": 1.0, "gemm": 2.0})
    assert tuning.lookup(step, old) is None  # dropped: measured under another torch
    assert [m["winner"] for m in tuning.measurements(step)] == ["native"]


def test_corrupt_cache_is_ignored(cache_dir):
    tuning.cache_path().parent.mkdir(parents=True)
    tuning.cache_path().write_text("{not json")
    program = tndiag.compile(_diagram(), tune=True)
    program(*_args(program))
    assert json.loads(tuning.cache_path().read_text())["entries"]


def test_winner_of_one_dtype_is_not_used_for_another(monkeypatch):
    program = tndiag.compile(_diagram(), tune=True)
    (step,) = program.steps
    tuning.record(step, context_of(torch.ones(1, dtype=torch.float64)), {"gemm": 1.0,
                                                                         "native": 2.0})
    calls = []
    real = backend_tune.measure_step
    monkeypatch.setattr(backend_tune, "measure_step",
                        lambda s, taken: calls.append(taken[0].dtype) or real(s, taken))
    program(*_args(program, torch.float64))
    program(*_args(program, torch.float32))
    assert calls == [torch.float32]


def test_sum_program_steps_are_tuned():
    program = tndiag.compile(ops.conv(*SHAPES, stride=5, bias=True), tune=True)
    assert any(s.tune for s in steps_of(program))


def test_tune_command_fills_the_cache(tmp_path, capsys):
    from tndiag.cli import main

    layers = tmp_path / "layers.json"
    row = {"net": "wav2vec2", "name": "conv0", "ndim": 1, "batch": 1, "c_in": 1, "c_out": 4,
           "input": [60], "kernel": [10], "stride": [5], "padding": [0], "dilation": [1],
           "groups": 1, "category": "general"}
    layers.write_text(json.dumps({"layers": [row]}))
    assert main(["tune", "--layers", str(layers), "--ops", "input-vjp", "kfac-reduce"]) == 0
    out = capsys.readouterr().out
    assert "wav2vec2/conv0" in out and "conv_transpose1d" in out and "window-sum" in out
    assert str(tuning.cache_path()) in out
    assert len(json.loads(tuning.cache_path().read_text())["entries"]) >= 2
    assert main(["tune", "--layers", str(tmp_path / "missing.json")]) == 1


def test_functional_follows_a_mode_change():
    x, w = torch.randn(*SHAPES[0]), torch.randn(*SHAPES[1])
    want = torch.nn.functional.conv1d(x, w, None, 5)
    torch.testing.assert_close(tndiag.functional.conv(x, w, stride=5), want)
    assert not tuning.cache_path().exists()
    tndiag.set_tuning("measure")  # the functional program cache is emptied: now measured
    torch.testing.assert_close(tndiag.functional.conv(x, w, stride=5), want)
    assert tuning.cache_path().exists()
