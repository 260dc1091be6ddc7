"""Markdown tables of ``tndiag paper runtime`` results: summaries per op and category, and
one table per net."""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

from tndiag.bench.report import geomean
from tndiag.bench.variants import VARIANTS

__all__ = ["ratio", "summary_table", "net_tables", "wins_line", "kfac_memory_table"]

_MiB = float(1 << 20)
_RATIOS = [v for v in VARIANTS if v != "PT"]


def ratio(row: Dict, variant: str) -> float:
    """Median time of ``variant`` over PT's in one row (nan where either is missing).

    >>> ratio({"time": {"TN": 3.0, "PT": 1.5}}, "TN"), math.isnan(ratio({"time": {}}, "TN"))
    (2.0, True)
    """
    t = row.get("time", {})
    if variant not in t or "PT" not in t or t["PT"] <= 0:
        return float("nan")
    return t[variant] / t["PT"]


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "-"


def _worst(values: Sequence[float]) -> float:
    return max((v for v in values if math.isfinite(v)), default=float("nan"))


def summary_table(results: Sequence[Dict], ops: Sequence[str], categories: Sequence[str]) -> str:
    """Geometric mean (worst) ratio to PT per op, category and variant; ``all`` rows too."""
    head = "| op | category | layers | " + " | ".join(f"{v}/PT" for v in _RATIOS) + " |"
    lines = [head, "|" + "---|" * (3 + len(_RATIOS))]
    for op in ops:
        for cat in (*categories, "all"):
            rows = [r for r in results if r["op"] == op and cat in ("all", r["category"])]
            if not rows:
                continue
            cells = []
            for v in _RATIOS:
                vals = [ratio(r, v) for r in rows]
                cells.append(f"{_fmt(geomean(vals))} ({_fmt(_worst(vals))})")
            name = f"**{cat}**" if cat == "all" else cat
            lines.append(f"| {op} | {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wins_line(results: Sequence[Dict], op: str) -> str:
    """How often tndiag beat TN, TN+opt and PT on ``op`` (layers where both ran)."""
    rows = [r for r in results if r["op"] == op]
    parts = []
    for other in ("TN", "TN+opt", "PT"):
        both = [r for r in rows if "tndiag" in r["time"] and other in r["time"]]
        won = sum(r["time"]["tndiag"] < r["time"][other] for r in both)
        parts.append(f"faster than {other} on {won}/{len(both)}")
    return f"- **{op}**: tndiag " + ", ".join(parts)


def _notes(r: Dict) -> str:
    notes = [f"{v} skipped" for v in r.get("skipped", {})]
    notes += [f"{v}: {e.split(':')[0]}" for v, e in r.get("errors", {}).items()]
    return "; ".join(notes)


def _mib(r: Dict, v: str) -> str:
    m = r.get("memory", {})
    return f"{m[v] / _MiB:.1f}" if v in m else "-"


def net_tables(results: Sequence[Dict]) -> str:
    """One table per net: per layer and op, PT's time, each ratio, peak extra memory."""
    out: List[str] = []
    for net in dict.fromkeys(r["net"] for r in results):
        out += [f"\n#### {net}\n", "| layer | cat. | op | N | PT ms | TN/PT | TN+opt/PT | "
                "tndiag/PT | MiB TN | MiB TN+opt | MiB tndiag | MiB PT | load | notes |",
                "|" + "---|" * 14]
        rows = sorted((r for r in results if r["net"] == net), key=lambda r: r["layer"])
        for r in rows:
            pt = r["time"].get("PT")
            pt_ms = f"{pt * 1e3:.3f}" if pt else "-"
            cells = " | ".join(_fmt(ratio(r, v)) for v in _RATIOS)
            mems = " | ".join(_mib(r, v) for v in VARIANTS)
            out.append(f"| {r['layer'].split('/')[-1]} | {r['category']} | {r['op']} | "
                       f"{r['batch']} | {pt_ms} | {cells} | {mems} | "
                       f"{r['load_before']}/{r['load_after']} | {_notes(r)} |")
    return "\n".join(out)


def kfac_memory_table(results: Sequence[Dict]) -> str:
    """KFAC-reduce: auxiliary memory of the standard and tndiag vs the unfolded input."""
    rows = [r for r in results if r["op"] == "kfac-reduce" and r.get("memory")]
    if not rows:
        return "(no KFAC-reduce memory measured)"
    frac = [r["memory"]["tndiag"] / r["unfolded_bytes"] for r in rows if "tndiag" in r["memory"]]
    saved = [r["memory"]["PT"] - r["memory"]["tndiag"] for r in rows
             if {"PT", "tndiag"} <= set(r["memory"])]
    return (f"- layers: {len(rows)}; tndiag's auxiliary memory / unfolded input: max "
            f"{max(frac, default=float('nan')):.3f}, geometric mean {geomean(frac):.4f}\n"
            f"- memory saved vs the standard: max {max(saved, default=0) / _MiB:.1f} MiB")
