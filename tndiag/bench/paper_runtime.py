"""``tndiag paper runtime``: the paper's run-time comparison over the layers of nine CNNs.

For every selected layer and op the variants of :mod:`tndiag.bench.variants` are checked
against PT (float32 tolerance), then timed interleaved (median of the rounds, as
``tndiag bench`` does, :func:`tndiag.bench.timing.time_interleaved`) and their peak extra
memory measured (:func:`tndiag.bench.timing.peak_extra_bytes`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch

from tndiag.bench.diagrams import Layer, layer_from_json
from tndiag.bench.impls import make_inputs
from tndiag.bench.progress import progress
from tndiag.bench.timing import loadavg, peak_extra_bytes, time_interleaved
from tndiag.bench.variants import build_variants, check_against_pt
from tndiag.errors import InvalidArgumentError

__all__ = ["CATEGORIES", "default_paper_layers", "load_layers", "select_layers", "measure",
           "interleave", "run_runtime", "unfolded_bytes", "clock_function"]

CATEGORIES = ("general", "mixed", "dense", "down-sampling")


def default_paper_layers() -> Path:
    """``benchmarks/paper_layers.json`` of the repository."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "paper_layers.json"


def load_layers(path: Path | None = None) -> List[dict]:
    """The layer rows of a paper-layers JSON file (default: the shipped one)."""
    path = Path(path or default_paper_layers())
    try:
        rows = json.loads(path.read_text())["layers"]
    except (OSError, ValueError, KeyError) as err:
        raise InvalidArgumentError(f"cannot read layers from {str(path)!r}: {err}") from None
    return rows


def _forward_flops(row: dict) -> float:
    """Multiply-adds of the forward convolution (the cost used to pick quick layers)."""
    out = 1.0
    for i, k, s in zip(row["input"], row["kernel"], row["stride"], strict=True):
        out *= max(1, i // s) * k
    return out * row["c_in"] * row["c_out"] / row["groups"]


def select_layers(rows: Sequence[dict], nets: Sequence[str] | None = None,
                  quick: bool = False, per_category: int = 2) -> List[dict]:
    """Rows of the given nets; with ``quick``, ``per_category`` layers of each category.

    The quick layers are those at evenly spaced quantiles of the forward cost within the
    category (never the most expensive one), so that every category is represented.

    >>> rows = [{"net": "a", "category": "dense", "input": [4], "kernel": [1], "stride": [1],
    ...          "c_in": c, "c_out": 1, "groups": 1, "name": str(c)} for c in (1, 2, 3, 4)]
    >>> [r["name"] for r in select_layers(rows, quick=True)]
    ['2', '3']
    """
    known = sorted({r["net"] for r in rows})
    unknown = sorted(set(nets or ()) - set(known))
    if unknown:
        raise InvalidArgumentError(f"--nets: unknown net(s) {unknown}; expected some of {known}")
    chosen = [r for r in rows if not nets or r["net"] in nets]
    if not quick:
        return chosen
    picked = []
    for category in CATEGORIES:
        ranked = sorted((r for r in chosen if r["category"] == category), key=_forward_flops)
        n = min(per_category, len(ranked))
        picked += [ranked[(j + 1) * len(ranked) // (n + 1)] for j in range(n)]
    return picked


def clock_function(clock: str, device: str = "cpu") -> Callable[[], float]:
    """The timer of a ``--clock`` choice: ``wall`` or ``cpu`` (CPU time; not for CUDA).

    >>> clock_function("cpu") is time.process_time
    True
    """
    if clock == "wall":
        return time.perf_counter
    if clock == "cpu" and not device.startswith("cuda"):
        return time.process_time
    raise InvalidArgumentError(f"--clock must be 'wall' or 'cpu' (CPU devices only), got "
                               f"{clock!r} on {device!r}")


def unfolded_bytes(layer: Layer, element_size: int = 4) -> int:
    """Bytes of the layer's unfolded input ``[N, C·∏K, ∏O]`` (what the standard builds)."""
    from tndiag.bench.diagrams import forward

    g = forward(layer)
    n = layer["batch"] * layer["c_in"] * math.prod(layer["kernel"])
    return n * math.prod(g.output_shape[2:]) * element_size


def measure(op: str, row: dict, batch: int | None, rounds: int, dtype: torch.dtype,
            device: str = "cpu", budget_bytes: int = 2 << 30, memory: bool = True,
            clock: str = "wall") -> Dict:
    """Check, time and measure every variant of ``op`` on one layer; one result row.

    ``clock`` is ``wall`` (elapsed time) or ``cpu`` (CPU time of this process, CPU only).
    """
    layer = layer_from_json(row, batch)
    tensors = make_inputs(layer, device, dtype)
    variants = build_variants(op, layer, tensors, budget_bytes)
    max_error = check_against_pt(variants)
    result: Dict = {"op": op, "layer": layer.label, "net": row["net"],
                    "category": row["category"], "batch": layer["batch"],
                    "unfolded_bytes": unfolded_bytes(layer, tensors["X"].element_size()),
                    "max_error": max_error, "skipped": variants.skipped,
                    "errors": variants.errors}
    return timed(result, variants.impls, rounds, device, clock, memory)


def timed(result: Dict, impls: Dict[str, Callable], rounds: int, device: str, clock: str,
          memory: bool) -> Dict:
    """``result`` with interleaved median times, the load around them and peak extra memory.

    >>> timed({}, {"a": lambda: None}, 1, "cpu", "cpu", False)["memory"]
    {}
    """
    result["load_before"] = loadavg()
    result["clock"] = clock
    result["time"] = time_interleaved(impls, rounds, device, warmup=1,
                                      clock=clock_function(clock, device))
    result["load_after"] = loadavg()
    result["memory"] = ({n: peak_extra_bytes(f, device) for n, f in impls.items()}
                        if memory else {})
    return result


def interleave(rows: Sequence[dict]) -> List[dict]:
    """Rows reordered round-robin over the categories (general, mixed, dense, ...), so that
    any prefix of a run covers every category in proportion.

    >>> rows = [{"category": c, "name": n} for c, n in
    ...         [("dense", 1), ("dense", 2), ("general", 3), ("mixed", 4)]]
    >>> [r["name"] for r in interleave(rows)]
    [3, 4, 1, 2]
    """
    queues = [[r for r in rows if r["category"] == c] for c in CATEGORIES]
    queues.append([r for r in rows if r["category"] not in CATEGORIES])
    out: List[dict] = []
    while any(queues):
        out += [q.pop(0) for q in queues if q]
    return out


def run_runtime(rows: Sequence[dict], ops: Sequence[str], *, batch: int | None, rounds: int,
                dtype: torch.dtype, device: str = "cpu", budget_bytes: int = 2 << 30,
                memory: bool = True, json_path: Path | None = None,
                show_progress: bool = True, by_layer: bool = False,
                clock: str = "wall") -> List[Dict]:
    """Measure every (op, layer); rewrite ``json_path`` after each row (partial runs survive).

    ``by_layer`` runs every op of one layer before the next layer (in :func:`interleave`
    order) instead of one op over all layers at a time.
    """
    if by_layer:
        jobs = [(op, row) for row in interleave(rows) for op in ops]
    else:
        jobs = [(op, row) for op in ops for row in rows]
    results: List[Dict] = []
    for op, row in progress(jobs, total=len(jobs), enabled=show_progress, desc="paper"):
        results.append(measure(op, row, batch, rounds, dtype, device, budget_bytes, memory,
                               clock))
        if json_path is not None:
            json_path.write_text(json.dumps(results, indent=1))
    return results
