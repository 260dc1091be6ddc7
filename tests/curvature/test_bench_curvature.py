"""Smoke test of ``tndiag bench --curvature`` on a tiny batch (no timing assertions)."""

import pytest

from tndiag.bench import main


def test_curvature_benchmark_prints_rows(capsys):
    code = main(["--curvature", "--no-reexec", "--models", "small-cnn", "--batch", "2",
                 "--rounds", "1", "--no-memory", "--only", "tndiag kfac reduce mc",
                 "curvlinops kfac reduce mc"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| small-cnn | tndiag kfac reduce mc |" in out
    assert "loadavg" in out


@pytest.mark.parametrize("name", ["small-cnn", "all-cnn-c", "resnet18ish"])
def test_benchmark_models_are_supported_by_tndiag(name):
    import runpy
    from pathlib import Path

    import torch

    import tndiag.curvature as tc
    bench = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" /
                               "curvature.py"))
    make, classes = bench["MODELS"][name]
    model = make().double()
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, classes, (2,))
    K = tc.kfac(model, torch.nn.CrossEntropyLoss(), x, y, kfac_approx="reduce")
    assert K.dim == sum(p.numel() for p in model.parameters())
    groups = {K[m].input.shape[0] for m in K.modules}
    assert name != "resnet18ish" or {4, 256} <= groups
