"""Figures of the tensor-dropout experiments (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

__all__ = ["plot_dropout", "plot_training", "COLORS"]

COLORS = {"spatial": "tab:blue", "channel": "tab:orange", "crs": "tab:green",
          "exact": "black"}
_STYLES = {"images": "-", "gaussian": "--"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(results: dict, data: str, method: str) -> List[dict]:
    return sorted((p for p in results["errors"] if p["data"] == data and p["method"] == method),
                  key=lambda p: p["keep"])


def _error_panel(ax, results: dict, xs_of, xlabel: str, datas) -> None:
    for data in datas:
        for method in results["config"]["methods"]:
            pts = [p for p in _series(results, data, method)
                   if xs_of(method, p["keep"]) is not None]
            if not pts:
                continue
            xs = [xs_of(method, p["keep"]) for p in pts]
            ax.errorbar(xs, [p["total_mean"] for p in pts], [p["total_std"] for p in pts],
                        color=COLORS[method], ls=_STYLES.get(data, ":"), marker="o", ms=3,
                        capsize=2, label=f"{method}, {data}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("relative error ‖ĝ − g‖ / ‖g‖")
    ax.grid(alpha=0.3)


def plot_dropout(results: dict, out_dir: Path) -> List[Path]:
    """Write ``dropout-error.png`` (error vs keep, vs saved bytes, vs backward time) and
    ``dropout-layers.png`` (error vs keep per layer) into ``out_dir``; return the paths."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = results["config"]
    mem: Dict[tuple, float] = {}
    exact = next(m for m in results["memory"] if m["method"] == "exact")["conv_bytes"]
    for m in results["memory"]:
        mem[(m["method"], m["keep"])] = m["conv_bytes"] / exact
    ratio = {(t["method"], t["keep"]): t["ratio"] for t in results.get("time", [])}
    panels = [(lambda m, k: k, "keep probability", c["data"]),
              (lambda m, k: mem.get((m, k)), "bytes the convolutions save for backward "
               "(fraction of exact)", c["data"])]
    if ratio:
        panels.append((lambda m, k: ratio.get((m, k)), f"backward time / exact ({c['timed_data']})",
                       [c["timed_data"]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (xs_of, label, datas) in zip(axes[0], panels):
        _error_panel(ax, results, xs_of, label, datas)
    axes[0][1].set_xlim(0, 1.05)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"All-CNN-C (untrained), batch {c['batch']}, {c['draws']} draws per point "
                 f"(mean ± std of one draw)", fontsize=9)
    fig.tight_layout()
    paths = [out_dir / "dropout-error.png", out_dir / "dropout-layers.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    _plot_layers(plt, results, paths[1])
    return paths


def _plot_layers(plt, results: dict, path: Path) -> None:
    names = results["layers"]
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.6 * rows), squeeze=False, sharex=True)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        for data in results["config"]["data"]:
            for method in results["config"]["methods"]:
                pts = _series(results, data, method)
                ax.errorbar([p["keep"] for p in pts], [p["layer_mean"][k] for p in pts],
                            [p["layer_std"][k] for p in pts], color=COLORS[method],
                            ls=_STYLES.get(data, ":"), marker="o", ms=2, capsize=1,
                            label=f"{method}, {data}")
        ax.set_title(f"conv {k + 1} (module {name})", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=6)
    fig.supxlabel("keep probability", fontsize=9)
    fig.supylabel("relative error of the layer's weight gradient", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training(results: dict, path: Path) -> Path:
    """Loss and test accuracy vs epoch, and final accuracy vs saved activation bytes."""
    plt = _pyplot()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 3.6))
    for run in results["runs"]:
        color = COLORS.get(run["method"], "black")
        style = {1.0: "-", 0.5: "--", 0.25: ":"}.get(run["keep"], "-.")
        label = "exact" if run["method"] == "exact" else f"{run['method']} {run['keep']:g}"
        epochs = range(1, len(run["train_loss"]) + 1)
        a1.plot(epochs, run["train_loss"], color=color, ls=style, label=label)
        a2.plot(epochs, run["test_acc"], color=color, ls=style, label=label)
        a3.scatter(run["conv_bytes"] / 2**10, run["test_acc"][-1], color=color,
                   marker={1.0: "o", 0.5: "s", 0.25: "^"}.get(run["keep"], "x"))
        a3.annotate(label, (run["conv_bytes"] / 2**10, run["test_acc"][-1]), fontsize=6)
    a1.set(xlabel="epoch", ylabel="training loss", yscale="log")
    a2.set(xlabel="epoch", ylabel="test accuracy")
    a3.set(xlabel="bytes the convolutions save for backward per step (KiB)",
           ylabel="final test accuracy")
    for ax in (a1, a2, a3):
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    c = results["config"]
    fig.suptitle(f"{c['title']}, mean over {c['seeds']} seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
