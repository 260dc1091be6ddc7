"""``tndiag paper``: the quick run end to end, the KFAC-reduce case, reports from JSON, and
the CUDA branches of the shared timing code (exercised on CPU)."""

import json

import pytest
import torch

from tndiag.bench import timing
from tndiag.bench.paper import KFAC_CASE, merge_results, run_kfac_case
from tndiag.bench.paper_runtime import load_layers, measure
from tndiag.bench.variants import VARIANTS
from tndiag.cli import main


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_quick_runtime_writes_tables_json_and_plots(tmp_path, capsys):
    raw, plots = tmp_path / "raw.json", tmp_path / "plots"
    code, out, err = run(["paper", "runtime", "--quick", "--rounds", "1", "--no-reexec",
                          "--threads", "1", "--json", str(raw), "--plot", str(plots)], capsys)
    assert code == 0, err
    assert "Ratio to PT: geometric mean (worst) per category" in out
    assert "| kfac-reduce | **all** | 8 |" in out and "#### resnet18" in out
    assert "paper:" in err and "100%" in err  # the progress bar
    rows = json.loads(raw.read_text())
    assert len(rows) == 8 * 5
    for r in rows:
        assert not r["errors"], r["errors"]
        assert set(r["time"]) == set(VARIANTS) - set(r["skipped"])
        assert set(r["memory"]) == set(r["time"]) and r["batch"] == 2
    for name in ("paper-runtime.png", "paper-kfac-reduce-memory.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"


def test_report_redraws_from_json(tmp_path, capsys):
    rows = [measure("kfac-reduce", r, 1, 1, torch.float32) for r in load_layers()[:2]]
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(rows))
    code, out, err = run(["paper", "report", str(raw), "--plot", str(tmp_path)], capsys)
    assert code == 0, err
    assert "KFAC-reduce auxiliary memory" in out and "#### 3c3d" in out
    assert (tmp_path / "paper-kfac-reduce-memory.png").exists()


def test_report_merges_runs_later_rows_replacing_earlier(tmp_path, capsys):
    first = [measure(op, r, 1, 1, torch.float32) for op in ("kfc", "kfac-reduce")
             for r in load_layers()[:2]]
    again = [dict(first[2], batch=5, layer=first[2]["layer"])]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(first))
    b.write_text(json.dumps(again))
    assert len(merge_results([first, again])) == 4
    assert merge_results([first, again])[2]["batch"] == 5
    code, out, err = run(["paper", "report", str(a), str(b)], capsys)
    assert code == 0, err
    assert "| kfc | **all** | 2 |" in out and "| kfac-reduce | **all** | 2 |" in out
    assert out.count("| kfac-reduce | 5 |") == 1  # the replaced row, with its batch
    assert out.count("| kfac-reduce | 1 |") == 1 and out.count("| kfc | 1 |") == 2


def test_report_names_the_unreadable_one_of_several_files(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps([measure("kfc", load_layers()[0], 1, 1, torch.float32)]))
    bad.write_text("[{}]")
    code, _, err = run(["paper", "report", str(good), str(bad)], capsys)
    assert code == 1 and "bad.json" in err and "good.json" not in err


def test_report_of_a_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(["paper", "report", str(bad)], capsys)
    assert code == 1 and err.startswith("tndiag paper: error: cannot read results")


def test_unknown_net_is_one_line(capsys):
    code, _, err = run(["paper", "runtime", "--nets", "lenet", "--no-reexec"], capsys)
    assert code == 1 and "unknown net(s) ['lenet']" in err and "Traceback" not in err


def test_paper_help_and_delegation(capsys):
    code, out, _ = run(["paper", "--help"], capsys)
    assert code == 0 and out.startswith("usage: tndiag paper")
    assert "runtime" in out and "kfac-reduce" in out


def test_kfac_reduce_case_prints_its_table(capsys):
    code, out, err = run(["paper", "kfac-reduce", "--batch", "1", "--rounds", "1",
                          "--threads", "1", "--no-reexec"], capsys)
    assert code == 0, err
    assert "| standard (F.unfold + mean) |" in out and "| tndiag |" in out
    assert "| einconv |" in out and "input [1, 10, 256, 256]" in out


def test_kfac_reduce_case_checks_every_implementation():
    r = run_kfac_case(batch=1, rounds=1, einconv=False)
    assert not r["errors"] and set(r["time"]) == {"tndiag", "PT", "std view"}
    assert r["input_bytes"] == 10 * 256 * 256 * 4
    assert r["unfolded_bytes"] == 10 * 25 * 127 * 127 * 4
    assert r["memory"]["tndiag"] < 0.1 * r["unfolded_bytes"]
    assert KFAC_CASE["batch"] == 128


def test_the_device_path_runs_on_cpu():
    """``--device cuda`` goes through the same code; run it with the device name 'cpu'."""
    r = measure("forward", load_layers()[0], 1, 1, torch.float32, device="cpu",
                memory=False)
    assert set(r["time"]) == set(VARIANTS) and r["memory"] == {}


def test_cuda_timing_synchronises(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append(1))
    times = timing.time_interleaved({"a": lambda: None, "b": lambda: None}, rounds=2,
                                    device="cuda")
    assert set(times) == {"a", "b"} and len(calls) >= 2 * 2


def test_cuda_memory_reads_the_allocator_peak(monkeypatch):
    state = {"now": 1000, "peak": 1000}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda: state["now"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: state["peak"])

    def fn():
        state["peak"] = 1000 + 500 + 64  # 500 bytes of temporaries, a 64-byte result
        return torch.zeros(16, dtype=torch.float32)
    assert timing.peak_extra_bytes(fn, device="cuda") == 500


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_quick_runtime_on_cuda(capsys):  # pragma: no cover - runs where a GPU is present
    code, out, err = run(["paper", "runtime", "--quick", "--rounds", "1", "--device", "cuda",
                          "--no-reexec", "--no-progress"], capsys)
    assert code == 0, err
    assert "gpu:" in out


def test_cpu_clock_times_the_process_and_refuses_cuda():
    import time

    from tndiag.bench.paper_runtime import clock_function
    from tndiag.errors import InvalidArgumentError

    assert clock_function("wall") is time.perf_counter
    with pytest.raises(InvalidArgumentError, match="CPU devices only"):
        clock_function("cpu", "cuda")
    r = measure("forward", load_layers()[0], 1, 1, torch.float32, memory=False, clock="cpu")
    assert r["clock"] == "cpu" and all(t > 0 for t in r["time"].values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_one_line(capsys):
    code, _, err = run(["paper", "runtime", "--device", "cuda", "--no-reexec"], capsys)
    assert code == 1 and "no CUDA device is available" in err and "Traceback" not in err
    code, _, err = run(["paper", "kfac-reduce", "--device", "tpu", "--no-reexec"], capsys)
    assert code == 1 and "--device must be cpu or cuda" in err
