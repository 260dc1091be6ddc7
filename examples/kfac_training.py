"""Train a small CNN on scikit-learn's handwritten digits with KFAC-preconditioned SGD
(``tndiag.curvature``), plain SGD and Adam; plot training loss versus wall-clock time.

    python examples/kfac_training.py            # writes docs/images/kfac-training.png
    python examples/kfac_training.py --epochs 2 --plot /tmp/kfac.png

KFAC here: every ``update_every`` steps the KFAC-reduce factors of the MC Fisher of the
current mini-batch are computed with ``tndiag.curvature.kfac`` and inverted with damping;
each step's gradient is multiplied by that inverse.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

import tndiag.curvature as tc

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "docs" / "images" / "kfac-training.png"


def digits() -> Tuple[torch.Tensor, torch.Tensor]:
    """The 1797 8×8 grey-scale digits as ``[N, 1, 8, 8]`` floats in [0, 1] and labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x, torch.tensor(data.target, dtype=torch.long)


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


class KFACSGD:
    """SGD whose step is ``-lr · K⁻¹ g``, K = damped KFAC-reduce of the MC Fisher."""

    def __init__(self, model: nn.Module, lr: float = 0.03, damping: float = 1e-2,
                 update_every: int = 2) -> None:
        self.model, self.lr, self.damping, self.every = model, lr, damping, update_every
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.generator = torch.Generator().manual_seed(0)
        self.inverse, self.steps = None, 0

    def step(self, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        if self.steps % self.every == 0:
            K = tc.kfac(self.model, loss_fn, x, y, kfac_approx="reduce", fisher_type="mc",
                        generator=self.generator)
            self.inverse = K.inverse(damping=self.damping)
        self.steps += 1
        loss = loss_fn(self.model(x), y)
        grads = torch.autograd.grad(loss, self.params)
        with torch.no_grad():
            for p, d in zip(self.params, self.inverse @ list(grads), strict=True):
                p.sub_(self.lr * d)
        return loss.item()


def _torch_step(opt: torch.optim.Optimizer, model: nn.Module) -> Callable:
    def step(loss_fn, x, y) -> float:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def train(method: str, epochs: int = 5, batch: int = 64, seed: int = 0
          ) -> List[Tuple[float, float]]:
    """``(seconds, full training loss)`` after every epoch, starting at 0 s."""
    x, y = digits()
    model, loss_fn = make_model(seed), nn.CrossEntropyLoss()
    if method == "kfac":
        step = KFACSGD(model).step
    elif method == "sgd":
        step = _torch_step(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model)
    else:
        step = _torch_step(torch.optim.Adam(model.parameters(), lr=3e-3), model)
    order = torch.Generator().manual_seed(seed)

    def full_loss() -> float:
        with torch.no_grad():
            return float(loss_fn(model(x), y))
    curve, elapsed = [(0.0, full_loss())], 0.0
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            step(loss_fn, x[idx], y[idx])
        elapsed += time.perf_counter() - start
        curve.append((elapsed, full_loss()))
    return curve


def plot(curves: Dict[str, List[Tuple[float, float]]], path: Path = PLOT) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, curve in curves.items():
        ax.plot(*zip(*curve, strict=True), marker="o", label=name)
    ax.set(xlabel="training time (s, one epoch per point)", ylabel="training loss",
           yscale="log", title="small CNN on sklearn digits")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: List[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny layers: more threads only add synchronisation
    curves = {"KFAC-SGD (tndiag)": train("kfac", args.epochs),
              "SGD + momentum": train("sgd", args.epochs), "Adam": train("adam", args.epochs)}
    for name, curve in curves.items():
        print(f"{name}: loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f} in {curve[-1][0]:.2f} s")
    print(f"plot written to {plot(curves, args.plot)}")


if __name__ == "__main__":
    main()
