"""``tndiag bench --overhead`` (benchmarks/overhead.py) runs every tndiag.functional function
beside torch's call and prints one row each; the numbers themselves are not asserted."""

import tndiag.functional as TF
from tndiag.cli import main


def test_overhead_table_has_a_row_per_function(capsys):
    assert main(["bench", "--overhead", "--rounds", "1", "--calls", "2"]) == 0
    out = capsys.readouterr().out
    assert "| function | tndiag µs | torch µs | ratio | overhead µs |" in out
    rows = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}
    assert set(TF.__all__) <= rows


def test_overhead_ops_table_names_the_kernels(capsys):
    assert main(["bench", "--overhead", "--ops"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ")}
    assert set(TF.__all__) <= set(rows)
    assert "conv2d" in rows["conv"].split("|")[2]
