"""Does a CNN still train when its weight gradients come from tensor dropout or CRS?

A small CNN (four 3×3 convolutions, two of stride 2, global average pooling, one linear
layer) is trained on scikit-learn's handwritten digits, upsampled to 16×16, with SGD and
momentum: once exactly, once per sampler and keep with its convolutions swapped
(``tndiag.nn.tensor_dropout`` for ``spatial``/``channel``, ``crs_dropout`` for ``crs``).
Every run starts from the same initialisation and sees the same batches; the result is the
mean over ``seeds`` such runs of the training loss and test accuracy per epoch, with the
bytes the convolutions save for backward in a training step (mean over ten batches,
measured with saved-tensor hooks) and the wall time per epoch.

    tndiag paper dropout-train --json train.json --plot docs/images
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from tndiag.bench.dropout_models import SavedBytes

__all__ = ["TrainConfig", "digits16", "small_cnn", "train_once", "run_training", "format_training",
           "main"]

RUNS: Tuple[Tuple[str, float], ...] = (("exact", 1.0), ("spatial", 0.5), ("spatial", 0.25),
                                       ("crs", 0.5), ("crs", 0.25))


@dataclass
class TrainConfig:
    """Sizes of one training comparison (defaults: the full run, a few CPU minutes)."""

    epochs: int = 8
    batch: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    seeds: int = 3
    runs: Sequence[Tuple[str, float]] = RUNS
    train_size: Optional[int] = None  # None: 80 % of the 1797 digits
    title: str = "small CNN on 16×16 digits, SGD + momentum"


def digits16(seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as ``[N, 1, 16, 16]`` (bilinear upsampling, zero mean, unit
    variance) split 80/20 into train and test by a fixed permutation.

    >>> xtr, ytr, xte, yte = digits16()
    >>> xtr.shape, xte.shape
    (torch.Size([1437, 1, 16, 16]), torch.Size([360, 1, 16, 16]))
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    x = nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    return x[perm[:cut]], y[perm[:cut]], x[perm[cut:]], y[perm[cut:]]


def small_cnn(seed: int = 0) -> nn.Sequential:
    """Four 3×3 convolutions (16×16 → 8×8 → 4×4), average pooling, a linear classifier."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    model.train()
    return acc


def train_once(method: str, keep: float, config: TrainConfig, seed: int,
               data: Tuple[torch.Tensor, ...]) -> dict:
    """One training run; ``method`` is ``exact``, ``spatial``, ``channel`` or ``crs``."""
    from tndiag.bench.dropout import swapped

    xtr, ytr, xte, yte = data
    if config.train_size:
        xtr, ytr = xtr[:config.train_size], ytr[:config.train_size]
    model = small_cnn(seed).to(xtr.dtype)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    order = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed + 1000)  # the samplers' draws
    losses, accs, seconds = [], [], []
    with swapped(model, None if method == "exact" else method, keep) as m:
        conv_bytes, total_bytes = _saved(m, xtr, ytr, config.batch)
        for _ in range(config.epochs):
            start, total = time.perf_counter(), 0.0
            perm = torch.randperm(len(xtr), generator=order)
            for k in range(0, len(xtr), config.batch):
                idx = perm[k:k + config.batch]
                loss = nn.functional.cross_entropy(m(xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            seconds.append(time.perf_counter() - start)
            losses.append(total / len(xtr))
            accs.append(_accuracy(m, xte, yte))
    return {"train_loss": losses, "test_acc": accs, "epoch_s": seconds,
            "conv_bytes": conv_bytes, "total_bytes": total_bytes}


def _saved(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
           steps: int = 10) -> Tuple[float, float]:
    """Mean bytes the convolutions (and the whole forward pass) save for backward over the
    first ``steps`` batches (Bernoulli draws keep a random number of slices)."""
    conv, total = [], []
    for k in range(steps):
        xb = x[k * batch:(k + 1) * batch].clone()  # a batch of its own, as in training
        with SavedBytes(model) as saved:
            nn.functional.cross_entropy(model(xb), y[k * batch:(k + 1) * batch])
        conv.append(sum(saved.per_layer.values()))
        total.append(saved.total)
    return statistics.fmean(conv), statistics.fmean(total)


def _mean(rows: List[dict], key: str) -> List[float]:
    return [statistics.fmean(v) for v in zip(*(r[key] for r in rows))]


def run_training(config: TrainConfig, progress: Callable[[str], None] = lambda s: None
                 ) -> dict:
    """Every run of ``config`` over its seeds; JSON-able means per epoch."""
    from tndiag.bench.timing import machine_info

    data = digits16()
    runs = []
    for method, keep in config.runs:
        rows = [train_once(method, keep, config, seed, data) for seed in range(config.seeds)]
        run = {"method": method, "keep": keep,
               **{k: _mean(rows, k) for k in ("train_loss", "test_acc", "epoch_s")},
               "final_acc_per_seed": [r["test_acc"][-1] for r in rows],
               "conv_bytes": rows[0]["conv_bytes"], "total_bytes": rows[0]["total_bytes"]}
        runs.append(run)
        progress(f"{method} keep={keep}: loss {run['train_loss'][0]:.3f} -> "
                 f"{run['train_loss'][-1]:.3f}, test accuracy {run['test_acc'][-1]:.3f}, "
                 f"{statistics.fmean(run['epoch_s']):.2f} s per epoch, conv bytes "
                 f"{run['conv_bytes'] / 2**10:.0f} KiB")
    return {"config": asdict(config), "machine": machine_info(), "runs": runs}


def format_training(results: dict) -> str:
    """A markdown table: final loss and accuracy, saved bytes and time per run.

    >>> r = {"config": {"seeds": 1, "epochs": 1}, "runs": [{"method": "exact", "keep": 1.0,
    ...      "train_loss": [0.5], "test_acc": [0.9], "final_acc_per_seed": [0.9],
    ...      "epoch_s": [1.0], "conv_bytes": 2048, "total_bytes": 4096}]}
    >>> print(format_training(r).splitlines()[2])
    | exact | 1 | 0.5000 | 0.900 | 0.900–0.900 | 2 | 4 | 1.00 |
    """
    lines = ["| method | keep | final train loss | final test acc | range over seeds | "
             "conv saved (KiB) | all saved (KiB) | s / epoch |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in results["runs"]:
        accs = r["final_acc_per_seed"]
        lines.append(f"| {r['method']} | {r['keep']:g} | {r['train_loss'][-1]:.4f} | "
                     f"{r['test_acc'][-1]:.3f} | {min(accs):.3f}–{max(accs):.3f} | "
                     f"{r['conv_bytes'] / 2**10:.0f} | {r['total_bytes'] / 2**10:.0f} | "
                     f"{statistics.fmean(r['epoch_s']):.2f} |")
    return "\n".join(lines)


SMALL: Dict[str, Any] = dict(epochs=2, seeds=1, train_size=256)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tndiag paper dropout-train",
                                description=__doc__.split("\n")[0])
    p.add_argument("--small", action="store_true", help="2 epochs, 1 seed, 256 digits")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: steadier when other jobs share the cores)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="write dropout-training.png here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``tndiag paper dropout-train``."""
    import os

    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads or min(os.cpu_count() or 1, 16))  # 0: every core
    config = TrainConfig(**SMALL) if args.small else TrainConfig()
    for key in ("epochs", "seeds"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    say: Dict[bool, Callable[[str], None]] = {
        True: lambda s: None, False: lambda s: print(s, file=sys.stderr, flush=True)}
    start = time.perf_counter()
    results = run_training(config, say[args.quiet])
    results["wall_s"] = time.perf_counter() - start
    c = results["config"]
    print(f"{c['title']}: {c['seeds']} seeds, {c['epochs']} epochs, batch {c['batch']}\n")
    print(format_training(results))
    print(f"\ntotal wall time: {results['wall_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        from tndiag.bench.dropout_plots import plot_training

        args.plot.mkdir(parents=True, exist_ok=True)
        print(f"plot: {plot_training(results, args.plot / 'dropout-training.png')}")
    return 0
