"""How each node kind and each kind of leg looks in a picture (one row per kind).

| kind     | glyph                           | label |
|----------|---------------------------------|-------|
| variable | box; colour and outline by role | name, role, runtime axes |
| pattern  | grey double-bordered box        | ``Π`` name, ``S`` stride, ``P`` padding, ``D`` dil. |
| reduced  | grey dashed double-bordered box | ``ΣΠ`` name, hyper-parameters, the summed-out ``O`` |
| sliced   | purple-edged double-bordered box | ``Π[s]`` name, hyper-parameters, ``I``, positions |
| delta    | small filled black dot          | none (name in the tooltip) |
| constant | small circle                    | its value, as a fraction when exact (``1/1024``) |

Legs: batch legs (``n``) dashed blue, group legs (``g``, ``h``) green, legs fused into a
bigger runtime axis drawn thicker, the sampled leg of a sliced pattern (its ``j``) dotted
purple and marked "sampled". A leg shared by three or more tensors (hyperedge) meets at
a small junction dot labelled with the index name.
"""

from __future__ import annotations

import html
import re
from fractions import Fraction
from typing import Callable, Dict

from tndiag.ir import Index, Kind, Role, Tensor

__all__ = ["Html", "KIND_STYLE", "ROLE_STYLE", "leg_class", "LEG_STYLE", "HIGHLIGHT",
           "node_attrs", "axes_text", "size_text", "value_text", "PORT_STYLE", "SHADE", "SAMPLED",
           "SAMPLED_STYLE"]

FONT = "Helvetica"

#: Edge attributes of the ``i``/``o``/``k`` letters at a pattern's end of an edge.
PORT_STYLE: Dict[str, str] = {"labelfontsize": "11", "labelfontcolor": "#7a1f1f",
                              "labeldistance": "1.6", "labelangle": "-35"}

#: Fill of the shaded region around a cut sub-network (the Jacobian part of a derivative).
SHADE = "#e8e8e8"

#: Colour used to highlight the part of a diagram a pass changed.
HIGHLIGHT = "#d62728"

#: Colour of a sliced pattern and of its sampled leg (tensor dropout).
SAMPLED = "#7b2d8e"

#: Edge attributes of a sampled leg (the ``j`` leg of a sliced pattern).
SAMPLED_STYLE: Dict[str, str] = {"style": "dotted", "color": SAMPLED, "fontcolor": SAMPLED,
                                 "penwidth": "2.4"}


class Html(str):
    """A DOT HTML-like label (written between ``<`` and ``>`` instead of quotes)."""


#: Variable role -> node attributes (shape and colour make the role visible).
ROLE_STYLE: Dict[Role, Dict[str, str]] = {
    Role.INPUT: {"shape": "box", "style": "rounded,filled", "fillcolor": "#cfe2f3"},
    Role.PARAMETER: {"shape": "box", "style": "filled", "fillcolor": "#fce5cd"},
    Role.VECTOR: {"shape": "box", "style": "rounded,filled,dashed", "fillcolor": "#d9ead3"},
}


def size_text(size: object) -> str:
    """Text of a size (ints as digits, symbolic sizes as sympy prints them)."""
    return str(size).replace(" ", "")


def axes_text(axes) -> str:
    """``[n, (g ci), i1]``: runtime axes, fused ones in parentheses.

    >>> axes_text(((Index("n", 2),), (Index("g", 2), Index("ci", 3))))
    '[n, (g ci)]'
    """
    parts = [a[0].name if len(a) == 1 else "(" + " ".join(ix.name for ix in a) + ")"
             for a in axes]
    return "[" + ", ".join(parts) + "]"


def _small(text: str, size: int = 9) -> str:
    return f'<FONT POINT-SIZE="{size}">{html.escape(text)}</FONT>'


def _variable(t: Tensor) -> Dict[str, str]:
    role = t.role or Role.INPUT
    label = f"<B>{html.escape(t.name)}</B><BR/>{_small(role.value + ' ' + axes_text(t.axes))}"
    return {**ROLE_STYLE[role], "label": Html(label)}


def _params_text(t: Tensor) -> str:
    p = t.params
    assert p is not None
    return f"S={p.stride} P={p.pad_left},{p.pad_right} D={p.dilation}"


def _pattern(t: Tensor) -> Dict[str, str]:
    label = f"<B>Π</B>&nbsp;{html.escape(t.name)}<BR/>{_small(_params_text(t), 8)}"
    return {"shape": "box", "style": "filled", "fillcolor": "#e0e0e0", "peripheries": "2",
            "label": Html(label)}


def _reduced(t: Tensor) -> Dict[str, str]:
    extra = f"{_params_text(t)} O={size_text(t.out_size)}"
    label = f"<B>ΣΠ</B>&nbsp;{html.escape(t.name)}<BR/>{_small(extra, 8)}"
    return {"shape": "box", "style": "filled,dashed", "fillcolor": "#e0e0e0",
            "peripheries": "2", "label": Html(label)}


def _sliced(t: Tensor) -> Dict[str, str]:
    extra = f"{_params_text(t)} I={size_text(t.full_size)} s={t.sample}"
    label = f"<B>Π[s]</B>&nbsp;{html.escape(t.name)}<BR/>{_small(extra, 8)}"
    return {"shape": "box", "style": "filled", "fillcolor": "#e0e0e0", "peripheries": "2",
            "color": SAMPLED, "label": Html(label)}


def _delta(t: Tensor) -> Dict[str, str]:
    return {"shape": "point", "width": "0.14", "style": "filled", "fillcolor": "black",
            "tooltip": f"δ {t.name}"}


def value_text(value: object) -> str:
    """A constant's value as a reader writes it: ``1/1024`` rather than ``0.0009765625``.

    >>> value_text(0.0009765625), value_text(0.25), value_text(3), value_text(0.1234567891)
    ('1/1024', '1/4', '3', '0.123457')
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    frac = Fraction(value).limit_denominator(1 << 20)
    if float(frac) == value:
        return f"{frac.numerator}/{frac.denominator}"
    return f"{value:.6g}"


def _constant(t: Tensor) -> Dict[str, str]:
    text = value_text(t.value)
    return {"shape": "circle", "style": "filled", "fillcolor": "#f3f3f3", "fontsize": "10",
            "margin": "0.02", "label": text, "tooltip": f"constant {t.name} = {text}"}


#: Kind -> node attributes of a tensor (a test checks every kind has a row).
KIND_STYLE: Dict[Kind, Callable[[Tensor], Dict[str, str]]] = {
    Kind.VARIABLE: _variable,
    Kind.PATTERN: _pattern,
    Kind.REDUCED: _reduced,
    Kind.SLICED: _sliced,
    Kind.DELTA: _delta,
    Kind.CONSTANT: _constant,
}


def node_attrs(t: Tensor) -> Dict[str, str]:
    """DOT attributes of tensor ``t``'s node.

    >>> from tndiag.ir import delta
    >>> node_attrs(delta("D", [Index("g", 2), Index("h", 2)]))["shape"]
    'point'
    """
    return KIND_STYLE[t.kind](t)


_BATCH = re.compile(r"n(\d+|_\w*)?")
_GROUP = re.compile(r"[gh](\d+|_\w*)?")

#: Leg class -> edge attributes.
LEG_STYLE: Dict[str, Dict[str, str]] = {
    "batch": {"style": "dashed", "color": "#1f4e9c", "fontcolor": "#1f4e9c"},
    "group": {"color": "#2e7d32", "fontcolor": "#2e7d32"},
    "plain": {},
}


def leg_class(ix: Index) -> str:
    """``batch`` for ``n``-legs, ``group`` for ``g``/``h``-legs, else ``plain``.

    >>> leg_class(Index("n", 2)), leg_class(Index("g", 2)), leg_class(Index("ci", 3))
    ('batch', 'group', 'plain')
    """
    if _BATCH.fullmatch(ix.name):
        return "batch"
    if _GROUP.fullmatch(ix.name):
        return "group"
    return "plain"
