"""Time one curvature pass of ``tndiag.curvature`` on three CNNs against a plain
forward+backward, curvlinops and BackPACK, in one run (``tndiag bench --curvature``).

    python benchmarks/curvature.py                 # all three models
    python benchmarks/curvature.py --models small-cnn --rounds 3

Each row: median seconds of one call (interleaved rounds, see tndiag.bench.timing), its
ratio to forward+backward, and the peak extra memory of one warm call and its ratio.
Peers run only where they accept the model; rows they fail on say why.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["MODELS", "main"]


def small_cnn() -> nn.Module:
    """Conv 3→32→64(s2)→64(s2), pool, Linear 64→10 (32×32 inputs, 10 classes)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def all_cnn_c() -> nn.Module:
    """All-CNN-C: 3→96→96(s2)→192→192(s2)→192→192(1×1)→100(1×1), global mean (100 classes)."""
    def conv(cin, cout, k=3, s=1):
        return [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2), nn.ReLU()]
    return nn.Sequential(*conv(3, 96), *conv(96, 96, s=2), *conv(96, 192),
                         *conv(192, 192, s=2), *conv(192, 192), *conv(192, 192, 1),
                         nn.Conv2d(192, 100, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class Block(nn.Module):
    """ResNet basic block (no normalisation); ``groups`` applies to the second conv."""

    def __init__(self, cin: int, cout: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.a = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.b = nn.Conv2d(cout, cout, 3, padding=1, groups=groups, bias=False)
        self.skip = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))) + self.skip(x))


def resnet18ish() -> nn.Module:
    """ResNet-18 layout for CIFAR at half width (32-64-128-256), 10 classes; stage 3 has a
    grouped (G = 4) and stage 4 a depthwise 3×3 convolution."""
    w = (32, 64, 128, 256)
    return nn.Sequential(
        nn.Conv2d(3, w[0], 3, padding=1, bias=False), nn.ReLU(),
        Block(w[0], w[0]), Block(w[0], w[0]),
        Block(w[0], w[1], 2), Block(w[1], w[1]),
        Block(w[1], w[2], 2), Block(w[2], w[2], groups=4),
        Block(w[2], w[3], 2), Block(w[3], w[3], groups=w[3]),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w[3], 10))


MODELS = {"small-cnn": (small_cnn, 10), "all-cnn-c": (all_cnn_c, 100),
          "resnet18ish": (resnet18ish, 10)}


def _fwd_bwd(model, loss_fn, x, y):
    params = [p for p in model.parameters() if p.requires_grad]
    return lambda: torch.autograd.grad(loss_fn(model(x), y), params)


def _tndiag(model, loss_fn, x, y, classes: int) -> Dict[str, Callable]:
    import tndiag.curvature as tc
    gen = torch.Generator().manual_seed(0)
    out = {}
    for approx in ("reduce", "expand"):
        out[f"tndiag kfac {approx} mc"] = (
            lambda a=approx: tc.kfac(model, loss_fn, x, y, kfac_approx=a, fisher_type="mc",
                                     generator=gen))
    if classes <= 10:
        for approx in ("reduce", "expand"):
            out[f"tndiag kfac {approx} type-2"] = (
                lambda a=approx: tc.kfac(model, loss_fn, x, y, kfac_approx=a,
                                         fisher_type="type-2"))
        out["tndiag ggn_diag type-2"] = lambda: tc.ggn_diag(model, loss_fn, x, y)
    out["tndiag ggn_diag mc"] = lambda: tc.ggn_diag(model, loss_fn, x, y, fisher_type="mc",
                                                    generator=gen)
    return out


def _curvlinops(model, loss_fn, x, y, classes: int) -> Dict[str, Callable]:
    try:
        from curvlinops import KFACLinearOperator
    except ImportError:
        return {}
    params = [p for p in model.parameters() if p.requires_grad]
    out = {}
    fishers = ("mc", "type-2") if classes <= 10 else ("mc",)
    for approx in ("reduce", "expand"):
        for fisher in fishers:
            def run(a=approx, f=fisher):
                op = KFACLinearOperator(model, loss_fn, params, [(x, y)], fisher_type=f,
                                        kfac_approx=a, check_deterministic=False)
                op.compute_kronecker_factors()
                return op
            out[f"curvlinops kfac {approx} {fisher}"] = run
    return out


def _backpack(model, loss_fn, x, y, classes: int) -> Dict[str, Callable]:
    try:
        from backpack import backpack, extend
        from backpack.extensions import KFAC, KFLR, DiagGGNExact, DiagGGNMC
    except ImportError:
        return {}
    bp_model, bp_loss = extend(model), extend(type(loss_fn)())
    exts = {"backpack KFAC (mc, expand-like)": KFAC, "backpack DiagGGNMC": DiagGGNMC}
    if classes <= 10:
        exts.update({"backpack KFLR (type-2)": KFLR, "backpack DiagGGNExact": DiagGGNExact})
    out = {}
    for name, ext in exts.items():
        def run(ext=ext):
            with backpack(ext()):
                loss = bp_loss(bp_model(x), y)
                grads = torch.autograd.grad(loss, list(model.parameters()))
            for p in model.parameters():  # BackPACK stores its results on the parameters
                for attr in ("kfac", "kflr", "diag_ggn_exact", "diag_ggn_mc"):
                    if hasattr(p, attr):
                        delattr(p, attr)
            return grads
        out[name] = run
    return out


def _works(fn: Callable) -> Optional[str]:
    try:
        fn()
        return None
    except Exception as err:  # noqa: BLE001 - a peer's failure is reported, not raised
        return f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"


def bench_model(name: str, batch: int, rounds: int, memory: bool,
                only: Optional[List[str]] = None) -> List[dict]:
    """Rows for one model: every candidate timed interleaved with forward+backward."""
    from tndiag.bench.timing import loadavg, peak_extra_bytes, time_interleaved

    make, classes = MODELS[name]
    torch.manual_seed(0)
    model, loss_fn = make(), nn.CrossEntropyLoss()
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, classes, (batch,))
    base = _fwd_bwd(model, loss_fn, x, y)
    candidates = {**_tndiag(model, loss_fn, x, y, classes),
                  **_curvlinops(model, loss_fn, x, y, classes),
                  **_backpack(model, loss_fn, x, y, classes)}
    if only:
        candidates = {k: v for k, v in candidates.items() if any(s in k for s in only)}
    base_mem = peak_extra_bytes(base) if memory else 0
    rows = []
    for cand, fn in candidates.items():
        error = _works(fn)
        row = dict(model=name, impl=cand, error=error, load=loadavg())
        if error is None:
            t = time_interleaved({"base": base, "cand": fn}, rounds, warmup=1)
            row.update(seconds=t["cand"], base_seconds=t["base"],
                       ratio=t["cand"] / t["base"])
            if memory:
                mem = peak_extra_bytes(fn)
                row.update(mib=mem / 2**20, base_mib=base_mem / 2**20,
                           mem_ratio=mem / max(base_mem, 1))
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


def _format_row(r: dict) -> str:
    if r["error"]:
        return f"| {r['model']} | {r['impl']} | fails: {r['error']} | | | | {r['load']} |"
    mem = (f"{r['mib']:.0f} | {r['mem_ratio']:.2f}×" if "mib" in r else "– | –")
    return (f"| {r['model']} | {r['impl']} | {r['seconds'] * 1e3:.0f} | "
            f"{r['ratio']:.2f}× | {mem} | {r['load']} |")


HEADER = ("| model | implementation | ms | time / fwd+bwd | peak extra MiB | "
          "memory / fwd+bwd | load (1 min) |\n|---|---|---|---|---|---|---|")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tndiag bench --curvature",
                                description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                   help="only implementations whose name contains one of these")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point (``tndiag bench --curvature ...`` passes its remaining arguments)."""
    from tndiag.bench.timing import machine_info

    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads or min(os.cpu_count() or 1, 16))
    info = machine_info()
    print(" · ".join(f"{k}: {v}" for k, v in info.items()))
    print(f"batch {args.batch}, float32, {args.rounds} rounds\n\n{HEADER}", flush=True)
    start = time.perf_counter()
    rows = []
    for name in args.models:
        rows += bench_model(name, args.batch, args.rounds, not args.no_memory, args.only)
    print(f"\ntotal wall time: {time.perf_counter() - start:.0f} s")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
