"""Draw the tensor-dropout figures of docs/tensor-dropout.md (tests run this script small).

    python scripts/make_dropout_images.py --small OUT_DIR     # tiny runs, seconds
    python scripts/make_dropout_images.py docs/images --results benchmarks/dropout-*.json

With ``--results`` the figures are redrawn from saved ``--json`` files of ``tndiag paper
dropout`` (several files are merged: their error points add up, the first file with
timings provides the memory and time panels) and ``tndiag paper dropout-train`` (a file
with ``"runs"``). Without it both experiments run (full size unless ``--small``) and their
results are written next to the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # draw with this checkout's tndiag, installed or not

from tndiag.bench.dropout_plots import plot_dropout, plot_training  # noqa: E402


def merge(figures: List[dict]) -> dict:
    """One result of several ``tndiag paper dropout`` runs (error points concatenated)."""
    timed = next((f for f in figures if f.get("time")), figures[0])
    merged = dict(timed, errors=[p for f in figures for p in f["errors"]])
    config = dict(timed["config"])
    config["data"] = list(dict.fromkeys(d for f in figures for d in f["config"]["data"]))
    merged["config"] = config
    return merged


def _run(small: bool, out_dir: Path) -> List[dict]:
    import torch

    from tndiag.bench import dropout, dropout_train

    torch.set_num_threads(1)
    config = dropout.Config(**dropout.SMALL) if small else dropout.Config()
    figure = dropout.run(config)
    train_config = (dropout_train.TrainConfig(**dropout_train.SMALL) if small
                    else dropout_train.TrainConfig())
    training = dropout_train.run_training(train_config)
    (out_dir / "dropout-figure.json").write_text(json.dumps(figure, indent=1))
    (out_dir / "dropout-training.json").write_text(json.dumps(training, indent=1))
    return [figure, training]


def main(argv: List[str] | None = None) -> int:
    """Command-line entry (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out_dir", type=Path, nargs="?", default=ROOT / "docs" / "images")
    p.add_argument("--small", action="store_true", help="tiny runs (seconds)")
    p.add_argument("--results", type=Path, nargs="+", default=None, metavar="JSON")
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.results:
        loaded = [json.loads(path.read_text()) for path in args.results]
    else:
        loaded = _run(args.small, args.out_dir)
    figures = [r for r in loaded if "errors" in r]
    written = plot_dropout(merge(figures), args.out_dir) if figures else []
    written += [plot_training(r, args.out_dir / "dropout-training.png")
                for r in loaded if "runs" in r]
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
