"""Run the notebooks and save them with their outputs (pictures visible on a code host).

Run: ``python scripts/execute_notebooks.py [NOTEBOOK ...]`` (default: every
``notebooks/*.ipynb``). The kernel starts in a temporary directory with this checkout on
``PYTHONPATH``, so a notebook that only works from one working directory fails here.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path, cwd: Path) -> object:
    """The notebook at ``path`` executed with the kernel in ``cwd``."""
    import nbclient
    import nbformat

    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def main(argv: List[str] | None = None) -> int:
    """Execute each notebook and write it back with its outputs."""
    import nbformat

    args = list(sys.argv[1:] if argv is None else argv)
    paths = [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        with tempfile.TemporaryDirectory() as cwd:
            notebook = execute(path, Path(cwd))
        nbformat.write(notebook, path)
        print(f"executed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
