"""The paper's experiments (same as ``tndiag paper``); see docs/paper-results.md.

    .venv/bin/python benchmarks/paper.py runtime --quick
    .venv/bin/python benchmarks/paper.py runtime --nets resnet18 --json r.json --plot out/
    .venv/bin/python benchmarks/paper.py kfac-reduce
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tndiag.bench.paper import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
