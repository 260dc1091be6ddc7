"""One measured row per (op, layer) and the markdown tables printed by ``tndiag bench``."""

from __future__ import annotations

import math
from typing import Dict, List

import torch

from tndiag.bench.diagrams import layer_from_json
from tndiag.bench.impls import implementations, make_inputs
from tndiag.bench.timing import loadavg, machine_info, peak_extra_bytes, time_interleaved

__all__ = ["measure_row", "format_table", "format_header", "geomean"]

_MiB = float(1 << 20)


def _agrees(ref: torch.Tensor, got: torch.Tensor) -> bool:
    got = got.reshape(ref.shape)
    scale = ref.abs().max().item() or 1.0
    tol = 1e-3 if ref.dtype == torch.float32 else 1e-9
    return bool(((got - ref).abs().max().item()) <= tol * scale)


def measure_row(op: str, row: dict, batch: int | None, rounds: int, dtype, args) -> Dict:
    """Time and measure every implementation of ``op`` on one layer."""
    layer = layer_from_json(row, batch)
    result: Dict = {"op": op, "layer": layer.label, "batch": layer["batch"],
                    "time": {}, "memory": {}, "errors": {}}
    tensors = make_inputs(layer, args.device, dtype)
    impls = implementations(op, layer, tensors, einconv=not args.no_einconv)
    ref = None
    for name in list(impls):
        try:
            value = impls[name]()
        except Exception as exc:  # report and keep benchmarking the others
            result["errors"][name] = f"{type(exc).__name__}: {exc}"[:200]
            del impls[name]
            continue
        if name != "tndiag" and ref is None:
            ref = value
        result.setdefault("_values", {})[name] = value
    values = result.pop("_values", {})
    result["agree"] = {n: _agrees(ref, v) for n, v in values.items()} if ref is not None else {}
    result["load_before"] = loadavg()
    result["time"] = time_interleaved(impls, rounds, args.device)
    result["load_after"] = loadavg()
    if not args.no_memory:
        result["memory"] = {n: peak_extra_bytes(f, args.device) for n, f in impls.items()}
    return result


def geomean(values: List[float]) -> float:
    """Geometric mean (nan for an empty list).

    >>> round(geomean([1.0, 4.0]), 6)
    2.0
    """
    values = [v for v in values if v > 0 and math.isfinite(v)]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _baseline(r: Dict) -> str | None:
    names = [n for n in r["time"] if n not in ("tndiag", "einconv")]
    return min(names, key=lambda n: r["time"][n]) if names else None


def _ms(r: Dict, name: str | None) -> str:
    if name is None or name not in r["time"]:
        return "error" if name in r["errors"] else "-"
    return f"{r['time'][name] * 1e3:.3f}"


def _mib(r: Dict, name: str | None) -> str:
    if name is None or name not in r["memory"]:
        return "-"
    return f"{r['memory'][name] / _MiB:.1f}"


def _ratio(r: Dict, a: str, b: str | None) -> float:
    if b is None or a not in r["time"] or b not in r["time"]:
        return float("nan")
    return r["time"][a] / r["time"][b]


def format_table(op: str, rows: List[Dict]) -> str:
    """Markdown table for one op plus its geometric-mean line."""
    head = ("| layer | N | tndiag ms | baseline | baseline ms | einconv ms | tndiag/base | "
            "tndiag/einconv | MiB tndiag | MiB base | MiB einconv | ok | load |")
    lines = [f"\n### {op}\n", head, "|" + "---|" * 13]
    base_r, ein_r = [], []
    for r in rows:
        b = _baseline(r)
        rb, re_ = _ratio(r, "tndiag", b), _ratio(r, "tndiag", "einconv")
        base_r.append(rb)
        ein_r.append(re_)
        ok = "yes" if r["agree"] and all(r["agree"].values()) else \
            ",".join(n for n, v in r["agree"].items() if not v) or "?"
        if r["errors"]:
            ok += " err:" + ",".join(r["errors"])
        lines.append(f"| {r['layer']} | {r['batch']} | {_ms(r, 'tndiag')} | {b or '-'} | "
                     f"{_ms(r, b)} | {_ms(r, 'einconv')} | {rb:.2f} | {re_:.2f} | "
                     f"{_mib(r, 'tndiag')} | {_mib(r, b)} | {_mib(r, 'einconv')} | {ok} | "
                     f"{r['load_before']}/{r['load_after']} |")
    worst = max((v for v in base_r if math.isfinite(v)), default=float("nan"))
    lines.append(f"\n**{op}**: geometric mean tndiag/baseline = {geomean(base_r):.3f} "
                 f"(worst {worst:.2f}), tndiag/einconv = {geomean(ein_r):.3f}")
    for r in rows:
        for name, err in r["errors"].items():
            lines.append(f"- {r['layer']} {name}: {err}")
    return "\n".join(lines)


def format_header(args, path, rounds: int) -> str:
    """Command, machine and settings of the run."""
    info = machine_info(args.device)
    lines = ["## tndiag bench", "", f"- layers: {path}", f"- device: {args.device}, "
             f"dtype {args.dtype}, rounds {rounds}, quick={args.quick}"]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines)
