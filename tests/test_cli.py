"""The ``tndiag`` command: each sub-command, exit codes 0/1/2, one-line errors, ``--debug``."""

import configparser
import io
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

import tndiag
from tndiag.cli import main

ROOT = Path(__file__).resolve().parent.parent
FORWARD = str(ROOT / "examples" / "forward.tnd")
SYMBOLIC = """index n: N, c: C, i1: I1, k1: 3
X : input [n, c, i1]
P1 = pattern(i1 -> o1, k1; stride=2)
U[n, (c k1), o1] = X * P1
"""


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def symbolic(tmp_path):
    path = tmp_path / "sym.tnd"
    path.write_text(SYMBOLIC)
    return str(path)


@pytest.mark.parametrize("command", ["render", "compile", "derive", "export", "passes", "demo"])
def test_help_for_each_command(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and out.startswith(f"usage: tndiag {command}")


def test_usage_errors_exit_2(capsys):
    assert run([], capsys)[0] == 2
    code, _, err = run(["frobnicate"], capsys)
    assert code == 2 and "invalid choice" in err
    code, _, err = run(["render"], capsys)
    assert code == 2 and "FILE.tnd" in err
    code, _, err = run(["derive", FORWARD], capsys)
    assert code == 2 and "--pipeline" in err


def test_render_svg_dot_png(tmp_path, capsys):
    svg, dot, png = tmp_path / "f.svg", tmp_path / "f.dot", tmp_path / "f.png"
    assert run(["render", FORWARD, "-o", str(svg), "--sizes"], capsys)[0] == 0
    texts = {t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"Π", "i1=8", "k2=2", "+"} <= texts
    assert run(["render", FORWARD, "-o", str(dot)], capsys)[0] == 0
    assert dot.read_text() == tndiag.to_dot(tndiag.parse(Path(FORWARD).read_text()))
    assert run(["render", FORWARD, "-o", str(png)], capsys)[0] == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(["render", FORWARD], capsys)
    assert code == 0 and out.lstrip().startswith("<?xml") and "</svg>" in out


def test_render_pipeline_and_trace(tmp_path, capsys):
    out = tmp_path / "t.dot"
    source = str(ROOT / "examples" / "kfac_reduce.tnd")
    assert run(["render", source, "-p", "simplify", "--trace", "-o", str(out)], capsys)[0] == 0
    assert '"f0/X"' in out.read_text() and "1. simplify" in out.read_text()
    assert run(["render", source, "-p", "simplify", "-o", str(out)], capsys)[0] == 0
    assert "ΣΠ" in out.read_text()
    code, _, err = run(["render", source, "--trace", "-o", str(out)], capsys)
    assert code == 1 and err == "tndiag: error: --trace draws what a pipeline did: " \
                                "give --pipeline too\n"


def test_render_unknown_format(capsys):
    code, _, err = run(["render", FORWARD, "-o", "x.bmp"], capsys)
    assert code == 1 and "cannot tell the format of 'x.bmp'" in err


def test_compile_prints_program(capsys):
    code, out, _ = run(["compile", FORWARD], capsys)
    program = tndiag.compile(tndiag.parse(Path(FORWARD).read_text()))
    assert code == 0 and out == str(program) + "\n"
    assert "cost" in out and "equation:" in out


def test_compile_symbolic_prints_formulas_and_export_needs_set(symbolic, capsys):
    code, out, _ = run(["compile", symbolic], capsys)
    assert code == 0 and out.startswith("# symbolic sizes") and "N*" in out
    code, _, err = run(["export", symbolic], capsys)
    assert code == 1 and err.startswith("tndiag: error:") and "--set NAME=VALUE" in err
    assert len(err.splitlines()) == 1
    code, out, _ = run(["compile", symbolic, "--set", "N=2,C=3", "--set", "I1=9"], capsys)
    assert code == 0 and "output shape: [2, 9, 4]" in out
    code, _, err = run(["compile", symbolic, "--set", "N=two"], capsys)
    assert code == 1 and "--set N expects a positive integer, got 'two'" in err
    code, _, err = run(["compile", symbolic, "--set", "N=0"], capsys)
    assert code == 1 and "--set N expects a positive integer, got '0'" in err
    code, _, err = run(["compile", symbolic, "--set", "N"], capsys)
    assert code == 1 and "--set expects NAME=INT pairs, got 'N'" in err


def test_derive_prints_text_that_parses(capsys):
    code, out, _ = run(["derive", FORWARD, "--pipeline", "vjp{wrt=W}"], capsys)
    assert code == 0
    expected = tndiag.run_pipeline(tndiag.parse(Path(FORWARD).read_text()), "vjp{wrt=W}")
    assert tndiag.parse(out) == expected.diagram
    code, _, err = run(["derive", FORWARD, "-p", "vjp{wrt=W},simplify", "--trace"], capsys)
    assert code == 0 and "pass vjp" in err and "pass simplify" in err


def test_export_writes_a_module(tmp_path, capsys):
    target = tmp_path / "conv_forward.py"
    assert run(["export", FORWARD, "-o", str(target), "--name", "conv"], capsys)[0] == 0
    namespace = {}
    exec(compile(target.read_text(), str(target), "exec"), namespace)
    program = tndiag.compile(tndiag.parse(Path(FORWARD).read_text()))
    inputs = [torch.randn(s) for s in program.input_shapes]
    assert torch.allclose(namespace["conv"](*inputs), program(*inputs), atol=1e-10)
    assert "Y[n, (g co), o1, o2] = X * P1 * P2 * W" in target.read_text()
    assert "= run_native(" in target.read_text()  # the compiled plan's native kernel
    assert run(["export", FORWARD, "-o", str(target), "--lowering", "dense"], capsys)[0] == 0
    text = target.read_text()
    assert "= run_native(" not in text and "dense_pattern, " in text


def test_syntax_error_is_one_line_plus_caret(tmp_path, capsys):
    bad = tmp_path / "bad.tnd"
    bad.write_text("X : input [n: 2]\nY[m] = X\n")
    code, _, err = run(["compile", str(bad)], capsys)
    first, *rest = err.splitlines()
    assert code == 1 and first.startswith(f"tndiag: error: {bad}:2:3: unknown index 'm'")
    assert "^" in rest[-1] and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["compile", "missing.tnd"], "cannot read 'missing.tnd'"),
    (["compile", FORWARD, "-p", "nonsense"], "unknown pass 'nonsense'"),
    (["export", FORWARD, "--name", "class"], "name must be a public Python identifier"),
])
def test_operation_errors_exit_1(argv, message, capsys):
    code, _, err = run(argv, capsys)
    assert code == 1 and err.startswith("tndiag: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_debug_shows_the_exception(capsys):
    with pytest.raises(tndiag.TndiagError):
        main(["--debug", "compile", FORWARD, "-p", "nonsense"])
    with pytest.raises(tndiag.TndiagError, match="cannot read"):
        main(["compile", "missing.tnd", "--debug"])


def test_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(Path(FORWARD).read_text()))
    code, out, _ = run(["compile", "-"], capsys)
    assert code == 0 and "equation:" in out


def test_bench_delegates_arguments(monkeypatch, capsys):
    import tndiag.bench

    seen = []
    monkeypatch.setattr(tndiag.bench, "main", lambda argv: seen.append(argv) or 0)
    assert run(["bench", "--quick", "--ops", "kfc"], capsys)[0] == 0
    assert seen == [["--quick", "--ops", "kfc"]]
    monkeypatch.undo()
    code, out, _ = run(["bench", "--help"], capsys)
    assert code == 0 and out.startswith("usage: tndiag bench")
    monkeypatch.delattr(tndiag.bench, "main")
    code, _, err = run(["bench"], capsys)
    assert code == 1 and "benchmarks are not available" in err


def test_demo_runs_the_quickstart(capsys):
    code, out, _ = run(["demo"], capsys)
    assert code == 0 and "comparisons with torch passed" in out


def test_python_dash_m_and_console_script():
    done = subprocess.run([sys.executable, "-m", "tndiag", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"tndiag {tndiag.__version__}"
    done = subprocess.run([sys.executable, "-m", "tndiag", "--debug", "compile", "missing.tnd"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" in done.stderr
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "tndiag = tndiag.cli:main" in config["options.entry_points"]["console_scripts"]


def test_one_version_string():
    """setup.cfg, tndiag.__version__ and --version all read tndiag/_version.py."""
    from tndiag._version import __version__

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: tndiag._version.__version__"
    assert tndiag.__version__ == __version__


def test_broken_pipe_is_silent():
    """``tndiag render ... | head`` stops quietly when the reader closes the pipe."""
    for argv in (["render", "examples/kfc.tnd"], ["passes"]):
        proc = subprocess.Popen([sys.executable, "-m", "tndiag", *argv], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before tndiag writes anything
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=120) == 0 and err == "", argv


def test_set_with_an_unknown_symbol_lists_the_file_symbols(symbolic, capsys):
    code, _, err = run(["compile", symbolic, "--set", "N=2,Q=2"], capsys)
    assert code == 1 and len(err.splitlines()) == 1
    assert f"--set Q: {symbolic} has no size symbol 'Q'; its symbols are C, I1, N" in err
    code, _, err = run(["compile", FORWARD, "--set", "N=2"], capsys)
    assert code == 1 and "has no size symbol 'N'; its sizes are all concrete" in err


@pytest.mark.parametrize("name", ["window", "torch", "EQUATIONS", "Dict"])
def test_export_name_clashing_with_the_module_is_rejected(name, capsys):
    code, out, err = run(["export", FORWARD, "--name", name], capsys)
    assert code == 1 and out == ""
    assert f"name {name!r} clashes with a name the exported module uses itself" in err
    assert "torch" in err.split("taken:")[1] and "_check" not in err


@pytest.mark.parametrize("name", ["window", "torch", "EQUATIONS", "Dict"])
def test_export_from_python_refuses_a_clashing_name(name):
    from tndiag import ops
    from tndiag.codegen.export import export
    from tndiag.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=f"name {name!r} clashes"):
        export(ops.conv((1, 2, 5), (3, 2, 3)), name=name)
    assert "def conv_forward(" in export(ops.conv((1, 2, 5), (3, 2, 3)), name="conv_forward")


def test_export_name_that_is_free_still_works(tmp_path, capsys):
    target = tmp_path / "m.py"
    assert run(["export", FORWARD, "-o", str(target), "--name", "conv_fwd"], capsys)[0] == 0
    assert "def conv_fwd(" in target.read_text()


def test_passes_lists_every_pass_with_options(capsys):
    from tndiag.passes import PASSES

    code, out, _ = run(["passes"], capsys)
    lines = out.splitlines()
    assert code == 0 and [ln.split("{")[0].split()[0] for ln in lines] == sorted(PASSES)
    assert any(ln.startswith("vjp{wrt=A|B,vector=NAME} ") for ln in lines)
    assert any(ln.startswith("expand-groups{groups=SIZE,legs=A|B,index=NAME,into=NAME} ")
               for ln in lines)
    assert all(len(ln.split(None, 1)) == 2 for ln in lines)  # every pass has a description


def test_compile_takes_the_lowering_switch(capsys):
    code, out, _ = run(["compile", FORWARD, "--lowering", "dense"], capsys)
    dense = tndiag.compile(tndiag.parse(Path(FORWARD).read_text()), lowerings=())
    assert code == 0 and out == str(dense) + "\n"
    code, out, _ = run(["compile", FORWARD, "--lowering", "window"], capsys)
    assert out == str(tndiag.compile(tndiag.parse(Path(FORWARD).read_text()))) + "\n"
    assert run(["compile", FORWARD, "--lowering", "fast"], capsys)[0] == 2
