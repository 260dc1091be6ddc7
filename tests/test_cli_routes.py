"""``tndiag compile`` prints the chosen route of every routed step and, once measured, the
times of its alternatives — for every step kind that has routes; ``tndiag export`` writes
the routed kernel."""

import pytest
import torch

import tndiag
from tndiag import ops
from tndiag.backends.torch_export import EMITTERS
from tndiag.cli import main
from tndiag.codegen import tuning
from tndiag.codegen.routes import ROUTES

#: Step kind with routes -> a diagram with such a step (completeness checked below).
ROUTED = {"native": ops.conv((1, 1, 40), (4, 1, 10), stride=5),
          "window-sum": ops.kfac_reduce((2, 3, 8, 8), 3, padding=1),
          "patch-gram": ops.kfc((2, 3, 8, 8), 3, padding=1)}


def test_every_routed_kind_has_a_diagram():
    assert set(ROUTED) == {kind.value for kind in ROUTES}


@pytest.mark.parametrize("kind", sorted(ROUTED))
def test_compile_prints_the_route_and_the_measured_alternatives(kind, tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tmp_path / "d.tnd"
    path.write_text(tndiag.to_text(ROUTED[kind]))
    steps = [s for s in tndiag.compile(ROUTED[kind]).steps if s.kind.value == kind]
    assert main(["compile", str(path)]) == 0
    out = capsys.readouterr().out
    for step in steps:
        assert f"route: {step.route} (chosen; routes {', '.join(step.routes)})" in out
    assert "measured (" not in out
    context = {"dtype": "float32", "device": "cpu", "threads": 1, "torch": torch.__version__}
    for step in steps:
        tuning.record(step, context, {r: 1e-3 * (n + 1) for n, r in enumerate(step.routes)})
    assert main(["compile", str(path)]) == 0
    out = capsys.readouterr().out
    times = ", ".join(f"{r} {n + 1:.3f} ms" for n, r in enumerate(steps[0].routes))
    assert out.count(f"measured (float32, cpu, 1 threads, torch {torch.__version__}): "
                     f"{times}") == len(steps)


@pytest.mark.parametrize("kind", sorted(ROUTED))
def test_export_command_writes_the_routed_kernel(kind, tmp_path, capsys):
    path = tmp_path / "d.tnd"
    path.write_text(tndiag.to_text(ROUTED[kind]))
    assert main(["export", str(path)]) == 0
    source = capsys.readouterr().out
    steps = [s for s in tndiag.compile(ROUTED[kind]).steps if s.kind.value == kind]
    assert steps and all(s.route for s in steps)
    for step in steps:  # the kernel the backend runs for the chosen route, called in the plan
        kernel, _ = EMITTERS[step.kind](step)
        assert f"def {kernel.__name__}(" in source and f"{kernel.__name__}(_R" in source
