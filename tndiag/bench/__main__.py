"""``python -m tndiag.bench`` runs the benchmark suite."""

import sys

from tndiag.bench import main

sys.exit(main())
