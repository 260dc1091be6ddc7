"""The four variants of the paper's run-time comparison, per op and layer.

- ``TN``: the op's diagram compiled with no structured lowering: dense Π, plain einsum
  steps along opt_einsum's path (the paper's baseline formulation).
- ``TN+opt``: the ``simplify`` pass (dense, down-sampling, sum-out, ... rules) first, then
  the same plain einsum.
- ``tndiag``: the default compiled program, through ``tndiag.functional``.
- ``PT``: torch's native kernels; for KFC / KFAC-reduce the unfold-based standard with
  ``F.unfold`` (as BackPACK, ASDL and the KFAC libraries compute it; a zero-pad +
  strided-view unfold for 1-d and 3-d layers, which ``F.unfold`` does not take).

``TN`` and ``TN+opt`` are skipped, with the reason, when their planned peak memory (dense
Π and intermediates) exceeds the memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import torch

import tndiag
from tndiag.bench.diagrams import DIAGRAMS, Layer
from tndiag.bench.impls import _baselines, _tndiag

__all__ = ["PAPER_OPS", "VARIANTS", "Variants", "build_variants", "check_against_pt",
           "planned_bytes"]

PAPER_OPS = ("forward", "input-vjp", "weight-vjp", "kfc", "kfac-reduce")
VARIANTS = ("TN", "TN+opt", "tndiag", "PT")
_MiB = float(1 << 20)


@dataclass
class Variants:
    """Runnable variants of one (op, layer), and those skipped with the reason."""

    impls: Dict[str, Callable] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)


def planned_bytes(program, element_size: int) -> Tuple[int, int]:
    """``(peak, dense Π)`` bytes a compiled einsum program plans to hold at once.

    >>> from tndiag.ops import conv
    >>> peak, pi = planned_bytes(tndiag.compile(conv((1, 1, 8), (1, 1, 3)), lowerings=()), 4)
    >>> pi == 8 * 6 * 3 * 4 and peak >= pi
    True
    """
    pi = 0
    for op in program.operands:
        if op.lowering == "dense-pattern":
            n = 1
            for size in op.tensor.shape:
                n *= int(size)
            pi += n
    return int(program.peak_memory) * element_size, pi * element_size


def _einsum_variant(name: str, diagram, t: Dict[str, torch.Tensor], budget: int,
                    out: Variants) -> None:
    try:
        program = tndiag.compile(diagram, lowerings=())
    except tndiag.TndiagError as err:
        out.errors[name] = f"{type(err).__name__}: {err}"[:200]
        return
    peak, pi = planned_bytes(program, t["X"].element_size())
    if peak > budget:
        out.skipped[name] = (f"planned peak {peak / _MiB:.0f} MiB (dense Π {pi / _MiB:.1f} MiB) "
                             f"> budget {budget / _MiB:.0f} MiB")
        return
    args = {n: t[n] for n in program.inputs}
    out.impls[name] = lambda: program(**args)


def _pt(op: str, layer: Layer, t: Dict[str, torch.Tensor]) -> Callable:
    base = _baselines(op, layer, t)
    if op not in ("kfc", "kfac-reduce"):
        return base["torch"]
    # F.unfold is 2-d only; other dimensions unfold through the zero-pad + strided view
    return base["std F.unfold" if layer["ndim"] == 2 else "std view"]


def build_variants(op: str, layer: Layer, t: Dict[str, torch.Tensor],
                   budget_bytes: int) -> Variants:
    """The variants of ``op`` on ``layer`` over the tensors ``t`` (see the module table).

    >>> from tndiag.bench.diagrams import layer_from_json
    >>> from tndiag.bench.impls import make_inputs
    >>> row = {"net": "t", "name": "c", "ndim": 2, "batch": 2, "c_in": 2, "c_out": 3,
    ...        "input": [6, 6], "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1],
    ...        "dilation": [1, 1], "groups": 1}
    >>> layer = layer_from_json(row)
    >>> v = build_variants("forward", layer, make_inputs(layer, "cpu", torch.float64), 1 << 30)
    >>> sorted(v.impls), v.skipped
    (['PT', 'TN', 'TN+opt', 'tndiag'], {})
    """
    if op not in PAPER_OPS:
        raise tndiag.InvalidArgumentError(f"op must be one of {PAPER_OPS}, got {op!r}")
    out = Variants()
    diagram = DIAGRAMS[op](layer)
    _einsum_variant("TN", diagram, t, budget_bytes, out)
    _einsum_variant("TN+opt", tndiag.simplify(diagram), t, budget_bytes, out)
    try:
        out.impls["tndiag"] = _tndiag(op, layer, t)
    except tndiag.TndiagError as err:
        out.errors["tndiag"] = f"{type(err).__name__}: {err}"[:200]
    out.impls["PT"] = _pt(op, layer, t)
    out.impls = {n: out.impls[n] for n in VARIANTS if n in out.impls}
    return out


def _max_error(ref: torch.Tensor, got: torch.Tensor) -> Tuple[float, float]:
    """``(max |got - ref|, tolerance)``; float32: 1e-3 of the result's scale."""
    got = got.reshape(ref.shape)
    scale = ref.abs().max().item() or 1.0
    tol = (1e-3 if ref.dtype == torch.float32 else 1e-9) * scale
    return (got - ref).abs().max().item(), tol


def check_against_pt(variants: Variants) -> Dict[str, float]:
    """Run every variant once and compare it with ``PT``; drop those that disagree or fail.

    A dropped variant lands in ``variants.errors`` ("mismatch: max error ... > tolerance ...")
    and is never timed. Returns the max absolute error of each variant that was checked.
    """
    ref = variants.impls["PT"]()
    errors: Dict[str, float] = {}
    for name in [n for n in variants.impls if n != "PT"]:
        try:
            value = variants.impls[name]()
            if not isinstance(value, torch.Tensor) or value.numel() != ref.numel():
                raise TypeError(f"result {getattr(value, 'shape', type(value))} is not "
                                f"shaped like PT's {tuple(ref.shape)}")
            err, tol = _max_error(ref, value)
        except Exception as exc:  # a failing variant is a benchmark result, not a crash
            variants.errors[name] = f"{type(exc).__name__}: {exc}"[:200]
            del variants.impls[name]
            continue
        errors[name] = err
        if not err <= tol:
            variants.errors[name] = f"mismatch: max error {err:.3g} > tolerance {tol:.3g}"
            del variants.impls[name]
    return errors
