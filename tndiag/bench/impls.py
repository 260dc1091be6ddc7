"""The implementations timed per op: tndiag, the baseline(s) and einconv 0.1.0.

Every implementation is a zero-argument callable over pre-built tensors, so the timer
measures only the call. tndiag runs through ``tndiag.functional`` (``conv``,
``conv_input_vjp``, ``conv_weight_vjp``, ``kfc``, ``kfac_reduce``; unfold through its
compiled diagram, in torch's layout), falling back to the hand-built diagrams of
:mod:`tndiag.bench.diagrams` where a function is missing. Baselines are written to win:
torch's native kernels for forward / VJPs / unfold, and for KFC / KFAC-reduce the
unfold-based standard (as BackPACK and curvlinops do it) with both ``F.unfold`` and a
zero-pad + strided-view unfold, the faster of which is the baseline.
"""

from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch.nn import grad as nn_grad

import tndiag
from tndiag.bench.diagrams import DIAGRAMS, Layer, explicit_padding

__all__ = ["make_inputs", "implementations", "strided_unfold"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_GRAD_INPUT = {1: nn_grad.conv1d_input, 2: nn_grad.conv2d_input, 3: nn_grad.conv3d_input}
_GRAD_WEIGHT = {1: nn_grad.conv1d_weight, 2: nn_grad.conv2d_weight, 3: nn_grad.conv3d_weight}


def make_inputs(layer: Layer, device: str, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    """Random X, W and V (shaped like the output) for ``layer``."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(layer.x_shape, generator=gen, dtype=dtype).to(device)
    w = torch.randn(layer.w_shape, generator=gen, dtype=dtype).to(device)
    xp, pad = _padded(layer, x[:1])
    y = _CONV[layer["ndim"]](xp, w, None, **dict(_torch_hyper(layer), padding=pad))
    v = torch.randn((layer["batch"], *y.shape[1:]), generator=gen, dtype=dtype).to(device)
    return {"X": x, "W": w, "V": v}


def _torch_hyper(layer: Layer) -> dict:
    h = dict(layer.hyper)
    pads = explicit_padding(layer)
    if all(l == r for l, r in pads):
        h["padding"] = tuple(l for l, _ in pads)
    return h


def _padded(layer: Layer, x: torch.Tensor):
    """X zero-padded (only when padding is asymmetric) and the symmetric rest for torch."""
    pads = explicit_padding(layer)
    if all(l == r for l, r in pads):
        return x, tuple(l for l, _ in pads)
    flat = [p for lr in reversed(pads) for p in lr]
    return F.pad(x, flat), (0,) * len(pads)


def strided_unfold(x: torch.Tensor, layer: Layer) -> torch.Tensor:
    """``[N, C, *O, *K]`` view of the zero-padded input (one copy: the padding)."""
    pads = explicit_padding(layer)
    flat = [p for lr in reversed(pads) for p in lr]
    u = F.pad(x, flat) if any(flat) else x
    for d, (k, s, dil) in enumerate(zip(layer["kernel"], layer["stride"], layer["dilation"],
                                        strict=True)):
        u = u.unfold(2 + d, dil * (k - 1) + 1, s)
    if any(dil > 1 for dil in layer["dilation"]):
        every = tuple(slice(None, None, dil) for dil in layer["dilation"])
        u = u[(Ellipsis,) + every]
    return u  # [N, C, O1.., K1..]


def _unfolded(layer: Layer, x: torch.Tensor, how: str) -> torch.Tensor:
    """``[N, G, C/G·∏K, ∏O]`` unfolded input, via ``F.unfold`` or the strided view."""
    N, C, G, nd = x.shape[0], x.shape[1], layer["groups"], layer["ndim"]
    if how == "F.unfold":
        xp, pad = _padded(layer, x)
        u = F.unfold(xp, tuple(layer["kernel"]), layer["dilation"], pad, layer["stride"])
        return u.view(N, G, -1, u.shape[-1])
    u = strided_unfold(x, layer)
    perm = (0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))
    return u.permute(perm).reshape(N, G, C // G * _prod(layer["kernel"]), -1)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _kfc_standard(layer, x, how):
    def run():
        u = _unfolded(layer, x, how)  # [N, G, F, O]
        m = u.permute(1, 2, 0, 3).reshape(u.shape[1], u.shape[2], -1)
        return torch.bmm(m, m.transpose(1, 2)).div_(x.shape[0])
    return run


def _kfac_reduce_standard(layer, x, how):
    def run():
        a = _unfolded(layer, x, how).mean(-1).transpose(0, 1)  # [G, N, F]
        return torch.bmm(a.transpose(1, 2), a).div_(x.shape[0])
    return run


def _baselines(op: str, layer: Layer, t: Dict[str, torch.Tensor]) -> Dict[str, Callable]:
    nd, h = layer["ndim"], _torch_hyper(layer)
    x, w, v = t["X"], t["W"], t["V"]
    if not all(left == right for left, right in explicit_padding(layer)):
        # asymmetric padding: run torch on the explicitly padded input
        xp, pad = _padded(layer, x)
        h = dict(h, padding=pad)
        spans = zip(explicit_padding(layer), x.shape[2:], strict=True)
        crop = (Ellipsis,) + tuple(slice(left, left + i) for (left, _), i in spans)
        if op == "forward":
            return {"torch": lambda: _CONV[nd](xp, w, None, **h)}
        if op == "input-vjp":
            return {"torch": lambda: _GRAD_INPUT[nd](xp.shape, w, v, **h)[crop]}
        if op == "weight-vjp":
            return {"torch": lambda: _GRAD_WEIGHT[nd](xp, w.shape, v, **h)}
    if op == "forward":
        return {"torch": lambda: _CONV[nd](x, w, None, **h)}
    if op == "input-vjp":
        return {"torch": lambda: _GRAD_INPUT[nd](x.shape, w, v, **h)}
    if op == "weight-vjp":
        return {"torch": lambda: _GRAD_WEIGHT[nd](x, w.shape, v, **h)}
    if op == "unfold":
        return {"F.unfold": lambda: _unfolded(layer, x, "F.unfold").flatten(1, 2)}
    make = _kfc_standard if op == "kfc" else _kfac_reduce_standard
    return {"std F.unfold": make(layer, x, "F.unfold"), "std view": make(layer, x, "view")}


def _einconv(op: str, layer: Layer, t: Dict[str, torch.Tensor]) -> Callable:
    import importlib

    ex = {mod: importlib.import_module(f"einconv.expressions.{mod}") for mod in (
        "convNd_input_vjp", "convNd_weight_vjp", "convNd_kfc", "convNd_kfac_reduce")}
    from einconv.functionals import convNd, unfoldNd

    x, w, v, h = t["X"], t["W"], t["V"], layer.hyper
    pad = explicit_padding(layer)
    sym = tuple(l for l, _ in pad) if all(l == r for l, r in pad) else h["padding"]
    kw = dict(stride=h["stride"], padding=sym, dilation=h["dilation"])
    if op == "forward":
        return lambda: convNd(x, w, groups=h["groups"], **kw)
    if op == "unfold":
        return lambda: unfoldNd(x, tuple(layer["kernel"]), **kw)
    if op == "input-vjp":
        expr = lambda: ex["convNd_input_vjp"].einsum_expression(  # noqa: E731
            w, v, tuple(layer["input"]), groups=h["groups"], **kw)
    elif op == "weight-vjp":
        expr = lambda: ex["convNd_weight_vjp"].einsum_expression(  # noqa: E731
            x, v, tuple(layer["kernel"]), groups=h["groups"], **kw)
    else:
        mod = ex["convNd_kfc" if op == "kfc" else "convNd_kfac_reduce"]
        expr = lambda: mod.einsum_expression(  # noqa: E731
            x, tuple(layer["kernel"]), groups=h["groups"], **kw)

    def run():
        eq, operands, shape = expr()
        return torch.einsum(eq, *operands).reshape(shape)
    return run


def _public(op: str, layer: Layer, t: Dict[str, torch.Tensor]):
    """The op through ``tndiag.functional`` (None where this checkout lacks the function)."""
    try:
        import tndiag.functional as tf
    except ImportError:
        return None
    x, w, v, h = t["X"], t["W"], t["V"], layer.hyper
    k = tuple(layer["kernel"])
    calls = {
        "forward": ("conv", lambda f: f(x, w, None, **h)),
        "input-vjp": ("conv_input_vjp", lambda f: f(x.shape, w, v, **h)),
        "weight-vjp": ("conv_weight_vjp", lambda f: f(x, w.shape, v, **h)),
        "kfc": ("kfc", lambda f: f(x, k, **h)),
        "kfac-reduce": ("kfac_reduce", lambda f: f(x, k, **h)),
    }
    if op not in calls or not hasattr(tf, calls[op][0]):
        return None
    fn, call = getattr(tf, calls[op][0]), calls[op][1]
    return lambda: call(fn)


def _tndiag(op: str, layer: Layer, t: Dict[str, torch.Tensor]) -> Callable:
    public = _public(op, layer, t)
    if public is not None:
        return public
    prog = tndiag.compile(DIAGRAMS[op](layer))
    args = {name: t[name] for name in prog.inputs}
    return lambda: prog(**args)


def implementations(op: str, layer: Layer, t: Dict[str, torch.Tensor],
                    einconv: bool = True) -> Dict[str, Callable]:
    """Name -> zero-argument callable; ``tndiag`` first, then baselines, then einconv."""
    try:
        impls = {"tndiag": _tndiag(op, layer, t)}
    except Exception as exc:  # a compile error is a benchmark result, not a crash
        impls = {"tndiag": _raiser(exc)}
    impls.update(_baselines(op, layer, t))
    if einconv:
        impls["einconv"] = _einconv(op, layer, t)
    return impls


def _raiser(exc: Exception) -> Callable:
    def run():
        raise exc
    return run
