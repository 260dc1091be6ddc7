"""Diagrams of the benchmarked operations, built from a layer description of layers.json.

Forward and unfold come from :mod:`tndiag.ops`; the VJPs, KFC and KFAC-reduce are written
here from the forward diagram's pieces (the legs and patterns of ``ops.conv``), in einconv's
convention for the curvature factors: one ``[C/G·∏K, C/G·∏K]`` block per group.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from tndiag import ops
from tndiag.ir import Diagram, Graph, Index, Kind, Role, Sum, constant, variable
from tndiag.ops.hyper import conv_spec

__all__ = ["Layer", "layer_from_json", "forward", "input_vjp", "weight_vjp", "unfold", "kfc",
           "kfac_reduce", "explicit_padding", "DIAGRAMS"]


class Layer(dict):
    """One row of layers.json (a dict) with the batch size actually used."""

    @property
    def label(self) -> str:
        """``net/name``."""
        return f"{self['net']}/{self['name']}"

    @property
    def x_shape(self) -> Tuple[int, ...]:
        """Input shape ``[N, C_in, *I]``."""
        return (self["batch"], self["c_in"], *self["input"])

    @property
    def w_shape(self) -> Tuple[int, ...]:
        """Weight shape ``[C_out, C_in/G, *K]``."""
        return (self["c_out"], self["c_in"] // self["groups"], *self["kernel"])

    @property
    def hyper(self) -> Dict[str, Any]:
        """stride, padding, dilation, groups as keyword arguments."""
        pad = self["padding"]
        return dict(stride=tuple(self["stride"]), dilation=tuple(self["dilation"]),
                    padding=pad if isinstance(pad, str) else tuple(pad), groups=self["groups"])


def layer_from_json(row: dict, batch: int | None = None) -> Layer:
    """A :class:`Layer` from a layers.json row, optionally with another batch size."""
    layer = Layer(row)
    if batch is not None:
        layer["batch"] = batch
    return layer


def explicit_padding(layer: Layer) -> Tuple[Tuple[int, int], ...]:
    """Per-dimension ``(left, right)`` padding (resolves ``'same'``)."""
    h = layer.hyper
    spec = conv_spec(layer["ndim"], layer["kernel"], h["stride"], h["padding"], h["dilation"])
    return tuple(spec.padding)


def forward(layer: Layer) -> Diagram:
    """``Y = conv(X, W)``."""
    return ops.conv(layer.x_shape, layer.w_shape, **layer.hyper)


def _pieces(layer: Layer):
    g = forward(layer)
    assert not isinstance(g, Sum)
    x, w = g.tensor("X"), g.tensor("W")
    pats = [t for t in g.tensors if t.kind is Kind.PATTERN]
    return g, x, w, pats


def input_vjp(layer: Layer) -> Graph:
    """``V ↦ (∂Y/∂X)ᵀ V``: V on the output legs, result on X's legs."""
    g, x, w, pats = _pieces(layer)
    v = variable("V", g.output, Role.VECTOR)
    return Graph.of([v, *pats, w], x.axes)


def weight_vjp(layer: Layer) -> Graph:
    """``V ↦ (∂Y/∂W)ᵀ V``: result on W's legs."""
    g, x, w, pats = _pieces(layer)
    v = variable("V", g.output, Role.VECTOR)
    return Graph.of([x, *pats, v], w.axes)


def unfold(layer: Layer) -> Graph:
    """im2col of the layer's input, torch layout ``[N, C·∏K, ∏O]``."""
    h = layer.hyper
    return ops.unfold(layer.x_shape, tuple(layer["kernel"]), h["dilation"], h["padding"],
                      h["stride"])


def _copy(g, x, pats, rename_o: bool):
    """Second copy of ``X ⊗ Π..``: channel, input and kernel legs primed (and o if asked)."""
    ren = {}
    for t in (x, *pats):
        for ix in t.indices:
            if ix.name in ("n", "g") or (ix.name.startswith("o") and not rename_o):
                continue
            ren[ix.name] = ix.name + "_"
    fn = lambda ix: Index(ren.get(ix.name, ix.name), ix.size)  # noqa: E731
    return [t.replace(axes=tuple(tuple(fn(i) for i in a) for a in t.axes),
                      name=t.name if t is x else t.name + "_") for t in (x, *pats)]


def _factor(layer: Layer, reduce: bool) -> Graph:
    g, x, w, pats = _pieces(layer)
    first = [x, *pats]
    second = _copy(g, x, pats, rename_o=reduce)
    ci = [ix for ix in x.indices if ix.name == "ci"][0]
    ks = [p.indices[2] for p in pats]
    ks_ = [p.indices[2] for p in second[1:]]
    ci_ = second[0].indices[[ix.name for ix in x.indices].index("ci")]
    N = layer["batch"]
    scale = 1.0 / N
    if reduce:
        O = 1
        for p in pats:
            O *= int(p.indices[1].size)
        scale /= O * O
    out: list = [(ci, *ks), (ci_, *ks_)]
    if layer["groups"] > 1:
        out = [Index("g", layer["groups"])] + out
    return Graph.of([*first, *second, constant("s", scale)], out)


def kfc(layer: Layer) -> Graph:
    """KFC input factor ``1/N Σ_{n,o} u uᵀ`` per group (u: unfolded input column)."""
    return _factor(layer, reduce=False)


def kfac_reduce(layer: Layer) -> Graph:
    """KFAC-reduce input factor ``1/N Σ_n ū ūᵀ`` per group, ``ū = 1/O Σ_o u``."""
    return _factor(layer, reduce=True)


DIAGRAMS = {"forward": forward, "input-vjp": input_vjp, "weight-vjp": weight_vjp,
            "unfold": unfold, "kfc": kfc, "kfac-reduce": kfac_reduce}
