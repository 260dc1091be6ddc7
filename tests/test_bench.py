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
