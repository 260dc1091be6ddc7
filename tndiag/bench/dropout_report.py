"""Markdown tables of ``tndiag paper dropout`` results (errors, saved bytes, backward time)."""

from __future__ import annotations

from typing import Dict, List

__all__ = ["format_results", "error_table", "cost_table"]


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f}"


def error_table(results: dict, data: str) -> str:
    """Total relative error (mean ± std over draws) per keep (rows) and method (columns).

    >>> r = {"errors": [{"data": "images", "method": "crs", "keep": 0.5, "total_mean": 0.5,
    ...                  "total_std": 0.01}]}
    >>> print(error_table(r, "images"))
    | keep | crs |
    |---:|---:|
    | 0.5 | 0.500 ± 0.010 |
    """
    points = [p for p in results["errors"] if p["data"] == data]
    methods = list(dict.fromkeys(p["method"] for p in points))
    keeps = sorted({p["keep"] for p in points})
    cell: Dict[tuple, str] = {(p["method"], p["keep"]): f"{p['total_mean']:.3f} ± "
                              f"{p['total_std']:.3f}" for p in points}
    lines = ["| keep | " + " | ".join(methods) + " |", "|---:|" + "---:|" * len(methods)]
    for k in keeps:
        lines.append(f"| {k:g} | " + " | ".join(cell.get((m, k), "–") for m in methods) + " |")
    return "\n".join(lines)


def cost_table(results: dict) -> str:
    """Bytes the convolutions save for backward, all saved bytes, and backward time."""
    times = {(t["method"], t["keep"]): t for t in results.get("time", [])}
    exact = next(m for m in results["memory"] if m["method"] == "exact")
    lines = ["| method | keep | conv saved (MiB) | vs exact | all saved (MiB) | backward (s) | "
             "vs exact |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m in results["memory"]:
        t = times.get((m["method"], m["keep"]))
        timing = (f"{t['backward_s']:.3f} | {t['ratio']:.2f}" if t else
                  ("–" if m["method"] != "exact" else _exact_time(results)) + " | –")
        lines.append(f"| {m['method']} | {m['keep']:g} | {_mib(m['conv_bytes'])} | "
                     f"{m['conv_bytes'] / exact['conv_bytes']:.2f} | {_mib(m['total_bytes'])} | "
                     f"{timing} |")
    return "\n".join(lines)


def _exact_time(results: dict) -> str:
    times: List[float] = [t["exact_backward_s"] for t in results.get("time", [])]
    return f"{sorted(times)[len(times) // 2]:.3f}" if times else "–"


def format_results(results: dict) -> str:
    """Every table of a run, with its sizes and machine line."""
    c, info = results["config"], results["machine"]
    head = (f"All-CNN-C, batch {c['batch']}, {c['draws']} draws per point, seed {c['seed']}; "
            f"torch {info['torch']}, {info['threads']} threads, {info['cpu']}, "
            f"load average {info['loadavg at start']} at start")
    parts = [head]
    for data in c["data"]:
        parts += [f"\nrelative error of all weight gradients, data: {data}",
                  error_table(results, data)]
    parts += [f"\nsaved for backward and backward time (data: {c['timed_data']}, "
              f"{c['rounds']} timed rounds)", cost_table(results)]
    if "wall_s" in results:
        parts.append(f"\ntotal wall time: {results['wall_s']:.1f} s")
    return "\n".join(parts)
