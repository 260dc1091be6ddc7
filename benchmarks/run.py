"""Benchmark suite of tndiag (same as ``tndiag bench``); see docs/benchmarks.md.

    .venv/bin/python benchmarks/run.py --quick
    .venv/bin/python benchmarks/run.py --ops forward kfc --layers benchmarks/layers.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tndiag.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
