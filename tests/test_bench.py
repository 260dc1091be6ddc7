"""Smoke test of the benchmark harness on one small layer (no timing assertions)."""

import json

import pytest

from tndiag.bench import OPS, default_layers_file, main
from tndiag.bench.diagrams import DIAGRAMS, layer_from_json
from tndiag.bench.impls import implementations, make_inputs
from tndiag.bench.report import geomean

SMALL = {"net": "tiny", "name": "conv", "ndim": 2, "batch": 2, "c_in": 4, "c_out": 6,
         "input": [7, 6], "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0],
         "dilation": [1, 2], "groups": 2, "category": "general"}


def test_default_layers_file_is_the_shipped_copy():
    rows = json.loads(default_layers_file().read_text())["layers"]
    assert len(rows) >= 20 and {"net", "kernel", "groups"} <= set(rows[0])


@pytest.mark.parametrize("op", OPS)
def test_every_implementation_agrees_with_the_baseline(op):
    import torch

    layer = layer_from_json(SMALL)
    tensors = make_inputs(layer, "cpu", torch.float64)
    impls = implementations(op, layer, tensors)
    results = {name: fn() for name, fn in impls.items()}
    ref = [v for n, v in results.items() if n not in ("tndiag", "einconv")][0]
    for name, value in results.items():
        torch.testing.assert_close(value.reshape(ref.shape), ref, rtol=1e-9, atol=1e-9,
                                   msg=f"{op}: {name} differs from the baseline")


def test_main_prints_a_table(tmp_path, capsys):
    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps({"layers": [SMALL]}))
    out = tmp_path / "raw.json"
    code = main(["--quick", "--ops", "forward", "kfac-reduce", "--layers", str(layers),
                 "--rounds", "1", "--no-reexec", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "### forward" in text and "### kfac-reduce" in text and "tiny/conv" in text
    rows = json.loads(out.read_text())
    assert [r["op"] for r in rows] == ["forward", "kfac-reduce"]
    assert all(r["agree"] and all(r["agree"].values()) for r in rows)


def test_geomean_of_nothing_is_nan():
    assert geomean([]) != geomean([])


def test_diagram_table_covers_every_op():
    assert set(DIAGRAMS) == set(OPS)


def test_quick_bench_plots_and_shows_progress(tmp_path, capsys):
    from tndiag.cli import main as cli

    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps({"layers": [SMALL, dict(SMALL, name="conv2", groups=1)]}))
    plot = tmp_path / "out.png"
    code = cli(["bench", "--quick", "--plot", str(plot), "--layers", str(layers), "--rounds",
                "1", "--threads", "1", "--no-reexec", "--ops", "forward", "kfc"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert plot.read_bytes()[:4] == b"\x89PNG" and f"plot: {plot}" in captured.out
    assert "bench:" in captured.err and "4/4" in captured.err  # tqdm's bar: rows done / total


def test_bench_without_progress_bar(tmp_path, capsys):
    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps({"layers": [SMALL]}))
    assert main(["--quick", "--ops", "forward", "--layers", str(layers), "--rounds", "1",
                 "--no-reexec", "--no-progress", "--no-memory", "--no-einconv"]) == 0
    assert "bench:" not in capsys.readouterr().err


@pytest.mark.parametrize("load, warned", [(9.5, True), (0.01, False)])
def test_load_banner_before_and_after_the_tables(tmp_path, capsys, monkeypatch, load, warned):
    from tndiag.bench import progress

    monkeypatch.setattr(progress, "_load", lambda: load)
    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps({"layers": [SMALL]}))
    assert main(["--quick", "--ops", "forward", "--layers", str(layers), "--rounds", "1",
                 "--no-reexec", "--no-progress", "--no-memory", "--no-einconv"]) == 0
    out = capsys.readouterr().out
    if warned:
        assert out.count(f"WARNING: load average {load:.2f}") == 2
        assert out.index("timings below") < out.index("### forward") < out.index("timings above")
    else:
        assert "WARNING" not in out


def test_load_threshold_is_half_the_cores():
    from tndiag.bench.progress import load_banner, load_is_high

    assert load_is_high(1.01, cores=2) and not load_is_high(1.0, cores=2)
    assert load_is_high(8.5, cores=16) and not load_is_high(7.9, cores=16)
    assert "on 16 logical cores" in load_banner(9.0, cores=16)


def test_bench_plot_draws_every_op(tmp_path):
    from tndiag.bench.plots import plot_bench

    rows = [{"op": op, "time": {"tndiag": 1.0, "torch": 2.0, "einconv": 4.0},
             "memory": {"tndiag": 1 << 20, "torch": 2 << 20}} for op in ("forward", "kfc")]
    path = plot_bench(rows, tmp_path / "b.svg", "title")
    text = path.read_text()
    assert text.startswith("<?xml") and "forward" in text and "kfc" in text
