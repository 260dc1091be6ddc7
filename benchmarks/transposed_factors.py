"""KFAC-reduce and KFC of transposed convolutions: run time of ``tndiag.functional`` and its
plan's step kinds, one thread, thread CPU time (median of ``--rounds`` calls, each after one
untimed call). Run it on two commits to compare plans.

    .venv/bin/python benchmarks/transposed_factors.py [--rounds 5]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tndiag import ops  # noqa: E402
from tndiag.functional._common import compile_for  # noqa: E402

#: (input shape, kernel size, stride, padding, output padding) of a transposed convolution.
CASES = [((8, 64, 28, 28), 3, 2, 1, 1), ((8, 32, 56, 56), 3, 1, 1, 0),
         ((8, 128, 14, 14), 4, 2, 1, 0)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load {os.getloadavg()[0]:.2f}")
    for shape, k, s, p, op in CASES:
        for build in (ops.kfac_reduce, ops.kfc):
            program = compile_for(build(shape, k, s, p, 1, 1, True, op), None)
            x = torch.randn(shape)
            program(x)
            times = []
            for _ in range(args.rounds):
                start = time.thread_time()
                program(x)
                times.append(time.thread_time() - start)
            kinds = ", ".join(step.kind.value for step in program.steps)
            print(f"{build.__name__:12s} {str(shape):18s} K {k} S {s}  "
                  f"{statistics.median(times) * 1e3:8.2f} ms   steps: {kinds}")


if __name__ == "__main__":
    main()
