"""Run a committed notebook the way ``scripts/execute_notebooks.py`` does, for the tests."""

import os
from pathlib import Path
from typing import Any, List

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(name: str, tmp_path: Path, monkeypatch: Any) -> List[Any]:
    """Outputs of ``notebooks/<name>`` executed with the kernel in ``tmp_path``.

    Checks that the committed file carries outputs and that no cell raised.
    """
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    committed = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert [o for c in committed.cells if c.cell_type == "code" for o in c.outputs], \
        f"{name} is committed with its outputs"
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # execute() extends it
    from execute_notebooks import execute

    notebook = execute(ROOT / "notebooks" / name, tmp_path)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs
