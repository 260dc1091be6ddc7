"""The GGN diagonal with and without the ``square`` rule (one weight-gradient kernel, squared,
against two identical kernels and an einsum), interleaved round by round, thread CPU time.

    .venv/bin/python benchmarks/ggn_square.py [--rounds 7] [--threads 1]

Each case compiles ``ops.weight_ggn_diag`` twice — with every lowering, and with every
lowering but ``square`` — checks that both give the same result, and prints the median of
``--rounds`` single calls of each (each after one untimed call).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import tndiag  # noqa: E402
from tndiag import ops  # noqa: E402
from tndiag.codegen.lowering import STRUCTURED  # noqa: E402

#: (name, input shape, grad-output-factor shape [Z, N, C_out, *O], kernel size, padding).
CASES = [
    ("2-d 16→32, 14×14, N 8, Z 10", (8, 16, 14, 14), (10, 8, 32, 14, 14), 3, 1),
    ("2-d 64→64, 28×28, N 8, Z 10", (8, 64, 28, 28), (10, 8, 64, 28, 28), 3, 1),
    ("1-d 3→8, 64, N 32, Z 10", (32, 3, 64), (10, 32, 8, 64), 3, 1),
]


def _time(program, x, s) -> float:
    program(X=x, S=s)
    start = time.thread_time()
    program(X=x, S=s)
    return time.thread_time() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    without = tuple(name for name in STRUCTURED if name != "square")
    print(f"torch {torch.__version__}, {args.threads} thread(s), load {os.getloadavg()[0]:.2f}")
    for name, x_shape, s_shape, kernel, padding in CASES:
        diagram = ops.weight_ggn_diag(x_shape, s_shape, kernel, padding=padding)
        square, twice = tndiag.compile(diagram), tndiag.compile(diagram, lowerings=without)
        x, s = torch.randn(x_shape), torch.randn(s_shape)
        torch.testing.assert_close(square(X=x, S=s), twice(X=x, S=s), rtol=1e-4, atol=1e-3)
        times: dict = {"square": [], "twice": []}
        for r in range(args.rounds):
            order = ("square", "twice") if r % 2 == 0 else ("twice", "square")
            for which in order:
                times[which].append(_time(square if which == "square" else twice, x, s))
        a, b = statistics.median(times["square"]), statistics.median(times["twice"])
        print(f"{name:32s} square {a * 1e3:8.2f} ms   two kernels {b * 1e3:8.2f} ms   "
              f"ratio {a / b:.2f}")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
