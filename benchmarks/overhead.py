"""Per-call overhead of every ``tndiag.functional`` function on a tiny input, against torch.

Each function is timed beside torch's own call for the same result (for KFC and KFAC-reduce:
the unfold-based standard of BackPACK/ASDL/KFAC libraries), interleaved round by round, one
thread; the table gives microseconds per call, their ratio and the difference. Functions
torch has no single call for compare with the shortest torch code computing the same thing.
Results: docs/benchmarks.md.

    .venv/bin/python benchmarks/overhead.py [--rounds 7] [--calls 2000] [--ops] [--only NAME ..]

``--ops`` prints, instead, the top-level aten operators one call of each runs (torch
profiler), tndiag's beside torch's: where the time of a slow row goes.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tndiag  # noqa: E402
import tndiag.functional as TF  # noqa: E402
from tndiag.bench.timing import loadavg  # noqa: E402


def cases():
    """name -> (tndiag call, torch call) on tiny tensors."""
    x, w, b = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3), torch.randn(3)
    y = F.conv2d(x, w, None, 1, 1)
    wt = torch.randn(2, 3, 3, 3)
    u = F.unfold(x, 3, padding=1)
    s = torch.randn(1, 1, 3, 8, 8)
    grad = torch.ops.aten.convolution_backward

    def std_kfc():
        m = F.unfold(x, 3, padding=1)
        return torch.einsum("nil,njl->ij", m, m) / x.shape[0]

    def std_kfac_reduce():
        m = F.unfold(x, 3, padding=1).mean(-1)
        return m.T @ m / x.shape[0]

    def ggn_diag():  # per-sample unfolded input times S, squared and summed
        m = F.unfold(x, 3, padding=1)
        jac = torch.einsum("zncl,nkl->znck", s.flatten(3), m)
        return (jac ** 2).sum((0, 1)).view_as(w)

    def ggn_gram():
        m = F.unfold(x, 3, padding=1)
        jac = torch.einsum("zncl,nkl->znck", s.flatten(3), m).flatten(0, 1).flatten(1)
        return jac @ jac.T

    return {
        "conv": (lambda: TF.conv(x, w, None, 1, 1), lambda: F.conv2d(x, w, None, 1, 1)),
        "conv + bias": (lambda: TF.conv(x, w, b, 1, 1), lambda: F.conv2d(x, w, b, 1, 1)),
        "conv_transpose": (lambda: TF.conv_transpose(x, wt, None, 2, 1),
                           lambda: F.conv_transpose2d(x, wt, None, 2, 1)),
        "conv_input_vjp": (lambda: TF.conv_input_vjp(x.shape, w, y, padding=1),
                           lambda: grad(y, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0],
                                        1, (True, False, False))[0]),
        "conv_weight_vjp": (lambda: TF.conv_weight_vjp(x, w.shape, y, padding=1),
                            lambda: grad(y, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0],
                                         1, (False, True, False))[1]),
        "unfold": (lambda: TF.unfold(x, 3, padding=1), lambda: F.unfold(x, 3, padding=1)),
        "fold": (lambda: TF.fold(u, (8, 8), 3, padding=1),
                 lambda: F.fold(u, (8, 8), 3, padding=1)),
        "unfold_kernel": (lambda: TF.unfold_kernel(w, (8, 8), padding=1),
                          lambda: F.conv2d(torch.eye(128).view(128, 2, 8, 8), w, None, 1, 1)),
        "kfc": (lambda: TF.kfc(x, 3, padding=1), std_kfc),
        "kfac_reduce": (lambda: TF.kfac_reduce(x, 3, padding=1), std_kfac_reduce),
        "weight_ggn_diag": (lambda: TF.weight_ggn_diag(x, s, 3, padding=1), ggn_diag),
        "weight_ggn_gram": (lambda: TF.weight_ggn_gram(x, s, 3, padding=1), ggn_gram),
    }


def per_call(fn, calls, clock):
    """Seconds per call, averaged over ``calls`` calls."""
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def aten_ops(fn):
    """Names of the top-level aten operators one (warm) call of ``fn`` runs."""
    fn(), fn()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return [e.name[len("aten::"):] for e in prof.events()
            if e.cpu_parent is None and e.name.startswith("aten::")]


def print_ops(table):
    """One row per function: the aten operators of one call, tndiag's and torch's."""
    print("| function | tndiag ops per call | torch ops per call |")
    print("|---|---|---|")
    for name, (ours, theirs) in table.items():
        a, b = aten_ops(ours), aten_ops(theirs)
        print(f"| {name} | {len(a)}: {', '.join(a)} | {len(b)}: {', '.join(b)} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--wall", action="store_true",
                   help="wall time instead of this thread's CPU time (which other processes "
                        "on a busy machine disturb less; one torch thread, so it is all)")
    p.add_argument("--ops", action="store_true",
                   help="print the aten operators of one call of each function instead")
    p.add_argument("--only", nargs="*", default=None, metavar="NAME",
                   help="time only these functions (names as in the table)")
    a = p.parse_args(argv)
    clock = time.perf_counter if a.wall else time.thread_time
    torch.set_num_threads(1)
    table = {name: pair for name, pair in cases().items() if not a.only or name in a.only}
    if a.ops:
        return print_ops(table)
    for ours, theirs in table.values():
        ours(), theirs()  # compile, warm up
    samples = {name: ([], []) for name in table}
    load = [loadavg()]
    for _ in range(a.rounds):  # interleaved: each pair once per round
        for name, (ours, theirs) in table.items():
            samples[name][0].append(per_call(ours, a.calls, clock))
            samples[name][1].append(per_call(theirs, a.calls, clock))
    load.append(loadavg())
    print(f"torch {torch.__version__}, tndiag {tndiag.__version__}, 1 thread, tuning "
          f"{tndiag.get_tuning()}, {'wall' if a.wall else 'thread CPU'} time, median of "
          f"{a.rounds} rounds x {a.calls} calls, load {load[0]} -> {load[1]}")
    print("| function | tndiag µs | torch µs | ratio | overhead µs |")
    print("|---|---|---|---|---|")
    for name, (ours, theirs) in samples.items():
        t, r = sorted(ours)[len(ours) // 2], sorted(theirs)[len(theirs) // 2]
        print(f"| {name} | {t * 1e6:.1f} | {r * 1e6:.1f} | {t / r:.2f} | {(t - r) * 1e6:+.1f} |")


if __name__ == "__main__":
    main()
