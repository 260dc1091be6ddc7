"""How each node kind becomes an operand, and the structured lowerings of contraction steps.

The codegen asks :data:`LOWERINGS` what to do with a tensor; the backend has a matching
table that turns each lowering into a runtime tensor.

- variable → ``input``: the user's tensor, reshaped to its flat legs.
- pattern → ``dense-pattern``: the 0/1 tensor ``[I, O, K]`` (the fallback).
- reduced → ``reduced-matrix``: counts ``[I, K]`` = ``Σ_o Π``, computed without the dense Π.
- sliced → ``sliced-pattern``: ``Π[s[j], o, k]`` built from the run-time positions ``s``
  (the fallback; the ``gather`` step below avoids it).
- delta → ``merge`` (legs renamed to one letter, no tensor) or ``dense-delta`` (only when two
  of its legs are open).
- constant → ``scale`` (a scalar factor) or ``fill`` (a filled tensor when it has legs).

Then, by structure of the letters (which legs of which operands a pattern joins, never by
tensor names), the compiler replaces parts of the network with structured steps, cheapest
first (:data:`STRUCTURED`; the cost model in :mod:`tndiag.codegen.cost` prices each):

- ``fold-constant``: a constant's legs all lie on other operands → a scalar factor.
- ``gather``: a sliced pattern's ``o`` leg is on exactly one other operand → that operand
  read at the kept positions, per tap (:mod:`~tndiag.codegen.gather`).
- ``reshape``: a dense pattern (S = K, no padding, I = O·K) has its i leg open only → the
  output leg i is (o, k) fused: no Π, no kernel.
- ``native``: A, B and patterns form a conv / transposed conv / conv weight gradient
  (:mod:`~tndiag.codegen.native`) → one torch kernel call.
- ``reduced``: a pattern's ``o`` leg is on no other operand nor the output → ``Σ_o Π`` as an
  ``[I, K]`` matrix.
- ``window-sum``: a summed pattern's ``i`` leg is on exactly one other operand → K window
  sums along that axis (one pass; total minus borders at stride 1).
- ``view``: a pattern's ``i`` leg is on exactly one other operand → zero-pad and
  ``Tensor.unfold`` view (``slice`` when K = 1).
- ``scatter``: a pattern's ``o`` and ``k`` legs are on one other operand alone and its ``i``
  leg is open (col2im, fold) → per tap, the operand's slice added into a strided slice of a
  zero output.
- ``gram``: a pairwise step multiplies a tensor with itself → one reshape and ``M Mᵀ``.
- ``broadcast``: a sum's term is a variable times constant fills → an ``expand`` view added
  in place (:mod:`~tndiag.codegen.fuse`).
- ``bias``: a sum is a native conv term plus a broadcast term on its output channels → the
  kernel's ``bias`` argument.

A pattern whose subscripts repeat a letter (a δ joining two of its legs) gets no structured
lowering. Anything else keeps the dense Π and plain einsum steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tndiag.ir import Kind, Tensor
from tndiag.ir.sizes import Size

__all__ = ["LOWERINGS", "STRUCTURED", "lowering_for", "ViewSpec", "GramSpec", "view_spec",
           "WindowSpec", "window_spec",
           "gram_spec", "reduced_patterns", "exclusive_holder", "ScatterSpec", "scatter_spec",
           "scatter_holder"]


def _variable(t: Tensor) -> str:
    return "input"


def _pattern(t: Tensor) -> str:
    return "dense-pattern"


def _reduced(t: Tensor) -> str:
    return "reduced-matrix"


def _sliced(t: Tensor) -> str:
    return "sliced-pattern"


def _delta(t: Tensor) -> str:
    return "merge"


def _constant(t: Tensor) -> str:
    return "scale" if not t.indices else "fill"


#: Kind -> function choosing the tensor's lowering (a test checks every kind has a row).
LOWERINGS: Dict[Kind, Callable[[Tensor], str]] = {
    Kind.VARIABLE: _variable,
    Kind.PATTERN: _pattern,
    Kind.REDUCED: _reduced,
    Kind.SLICED: _sliced,
    Kind.DELTA: _delta,
    Kind.CONSTANT: _constant,
}

#: The structured lowerings, in the order the compiler tries them.
STRUCTURED = ("fold-constant", "gather", "reshape", "native", "reduced", "window-sum", "view",
              "scatter", "gram", "broadcast", "bias")


def lowering_for(t: Tensor) -> str:
    """The lowering name chosen for tensor ``t`` on its own (before structure is seen).

    >>> from tndiag.ir import Index, pattern
    >>> lowering_for(pattern("P", Index("i", 5), Index("o", 3), Index("k", 3)))
    'dense-pattern'
    """
    return LOWERINGS[t.kind](t)


@dataclass(frozen=True)
class ViewSpec:
    """Zero-pad some axes of a tensor at once, then view each as ``(windows O, taps K)``.

    Axis ``axes[j]`` of size ``I`` becomes the ``O`` windows in place and a new trailing axis
    (in order of ``axes``) the ``K`` taps: ``out[.., o, .., k] = padded[.., o·S + k·D, ..]``.
    Padding every axis before the first unfold keeps the padded copy as small as the input.
    """

    axes: Tuple[int, ...]
    ndim: int
    strides: Tuple[int, ...]
    pads: Tuple[Tuple[int, int], ...]
    dilations: Tuple[int, ...]
    kernels: Tuple[Size, ...]

    @property
    def label(self) -> str:
        """``view:slice`` when every kernel has one tap, ``view:unfold`` otherwise."""
        return "view:slice" if all(k == 1 for k in self.kernels) else "view:unfold"


def view_spec(letters: str, patterns: Sequence[str], params: Sequence[tuple],
              kernels: Sequence[Size]) -> Tuple[ViewSpec, str]:
    """The view of a tensor with subscripts ``letters`` through patterns (i, o, k) at once.

    >>> spec, out = view_spec("ncij", ["iok", "jpl"], [(2, 1, 1, 1), (1, 0, 0, 1)], [3, 2])
    >>> out, spec.axes, spec.label
    ('ncopkl', (2, 3), 'view:unfold')
    """
    out = list(letters)
    for p in patterns:
        out[letters.index(p[0])] = p[1]
    spec = ViewSpec(tuple(letters.index(p[0]) for p in patterns), len(letters),
                    tuple(q[0] for q in params), tuple((q[1], q[2]) for q in params),
                    tuple(q[3] for q in params), tuple(kernels))
    return spec, "".join(out) + "".join(p[2] for p in patterns)


@dataclass(frozen=True)
class WindowSpec:
    """``out[.., k] = Σ_o padded[.., o·S + k·D, ..]`` along ``axis``: the windows per tap ``k``.

    ``windows[k] = (first, last)`` are the unpadded input positions the tap reaches (every
    ``stride``-th one in between); an empty window is ``(0, -1)``.
    """

    axis: int
    size: int
    stride: int
    windows: Tuple[Tuple[int, int], ...]


def window_spec(axis: int, I: int, O: int, K: int, stride: int, pad_left: int,
                dilation: int) -> WindowSpec:
    """The windows of ``Σ_o Π[i, o, k]`` for each tap (concrete sizes).

    >>> window_spec(0, 5, 5, 3, 1, 1, 1).windows  # 'same' padding: borders drop one pixel
    ((0, 3), (0, 4), (1, 4))
    """
    windows = []
    for k in range(K):
        lo = k * dilation - pad_left
        hi = lo + stride * (O - 1)
        first = lo if lo >= 0 else lo + stride * (-(lo // stride))
        last = hi if hi <= I - 1 else lo + stride * ((I - 1 - lo) // stride)
        windows.append((first, last) if first <= last else (0, -1))
    return WindowSpec(axis, I, stride, tuple(windows))


@dataclass(frozen=True)
class ScatterSpec:
    """``out[.., o·S + k·D − P, ..] += t[.., o, .., k, ..]`` for patterns on one tensor (col2im).

    ``t`` has ``ndim`` axes; pattern ``j`` takes its ``o`` leg from axis ``o_axes[j]`` (which
    becomes the ``I = sizes[j]`` positions in place) and its ``k`` leg from ``k_axes[j]``
    (removed). ``taps[j]`` lists, per kernel tap that reaches the output,
    ``(k, first o, last o, first i)``; the i positions step by ``strides[j]`` (empty while
    sizes are symbolic: such a plan prints its costs but does not run).
    """

    ndim: int
    o_axes: Tuple[int, ...]
    k_axes: Tuple[int, ...]
    sizes: Tuple[Size, ...]
    strides: Tuple[int, ...]
    taps: Tuple[Tuple[Tuple[int, int, int, int], ...], ...]


def scatter_spec(letters: str, patterns: Sequence[str], params: Sequence[tuple],
                 sizes: Sequence[Sequence[Size]]) -> Tuple[ScatterSpec, str]:
    """The scatter of a tensor with subscripts ``letters`` through patterns (i, o, k) at once.

    ``params`` are (stride, pad_left, pad_right, dilation) and ``sizes`` (I, O, K) per pattern.

    >>> spec, out = scatter_spec("ncko", ["iok"], [(1, 1, 1, 1)], [(4, 4, 3)])
    >>> out, spec.taps[0]
    ('nci', ((0, 1, 3, 0), (1, 0, 3, 0), (2, 0, 2, 1)))
    """
    taps = []
    for (S, pl, _, D), (I, O, K) in zip(params, sizes):
        found = []
        for k in range(K if all(isinstance(v, int) for v in (I, O, K)) else 0):
            lo = max(0, -((k * D - pl) // S))  # ceil((pl - k·D) / S)
            hi = min(O - 1, (I - 1 + pl - k * D) // S)
            if lo <= hi:
                found.append((k, lo, hi, lo * S + k * D - pl))
        taps.append(tuple(found))
    out = list(letters)
    for p in patterns:
        out[letters.index(p[1])] = p[0]
    result = "".join(ch for ch in out if ch not in {p[2] for p in patterns})
    spec = ScatterSpec(len(letters), tuple(letters.index(p[1]) for p in patterns),
                       tuple(letters.index(p[2]) for p in patterns), tuple(s[0] for s in sizes),
                       tuple(q[0] for q in params), tuple(taps))
    return spec, result


@dataclass(frozen=True)
class GramSpec:
    """``T`` contracted with itself: ``perm`` orders T as (batch, kept, summed) legs."""

    perm: Tuple[int, ...]
    batch: Tuple[Size, ...]
    kept: Tuple[Size, ...]
    summed: Size
    result: str
    out_perm: Tuple[int, ...]


def gram_spec(a: str, b: str, result: str, shape: Sequence) -> Optional[GramSpec]:
    """Describe ``einsum(a,b->result)`` of one tensor with itself as ``M Mᵀ``, if it is one.

    Position ``j`` holds the same leg of both copies: a shared letter is a batch leg (if kept)
    or summed; different letters must both be kept and absent from the other copy.

    >>> gram_spec("nck", "nCK", "ckCK", (2, 3, 4)).kept
    (3, 4)
    """
    if len(a) != len(b) or len(set(a)) != len(a) or len(set(b)) != len(b):
        return None
    batch: List[int] = []
    kept: List[int] = []
    summed: List[int] = []
    for j, (x, y) in enumerate(zip(a, b)):
        if x == y:
            (batch if x in result else summed).append(j)
        elif x in b or y in a or x not in result or y not in result:
            return None
        else:
            kept.append(j)
    if not kept:
        return None
    order = "".join(a[j] for j in batch) + "".join(a[j] for j in kept) + \
        "".join(b[j] for j in kept)
    if sorted(order) != sorted(result):
        return None
    sizes = lambda js: tuple(shape[j] for j in js)  # noqa: E731
    summed_size = 1
    for s in sizes(summed):
        summed_size = summed_size * s
    return GramSpec(tuple(batch + kept + summed), sizes(batch), sizes(kept), summed_size,
                    order, tuple(order.index(ch) for ch in result))


def exclusive_holder(letter: str, letters: Sequence[str], kinds: Sequence[str], kept: str,
                     skip: int) -> Optional[int]:
    """The one non-pattern operand carrying ``letter`` (once), when nothing else does."""
    if letter in kept:
        return None
    found = [q for q, subs in enumerate(letters) if q != skip and letter in subs]
    if len(found) != 1 or kinds[found[0]] == "pattern" or letters[found[0]].count(letter) != 1:
        return None
    return found[0]


def reduced_patterns(letters: Sequence[str], kinds: Sequence[str], kept: str) -> List[int]:
    """Positions of patterns whose ``o`` leg is on no other operand and not in the output.

    >>> reduced_patterns(["nci", "iok", "ok"], ["v", "pattern", "v"], "nck")
    []
    >>> reduced_patterns(["nci", "iok"], ["v", "pattern"], "nck")
    [1]
    """
    out = []
    for pos, subs in enumerate(letters):
        if kinds[pos] != "pattern" or len(set(subs)) != 3:
            continue
        o = subs[1]
        if o not in kept and not any(o in s for q, s in enumerate(letters) if q != pos):
            out.append(pos)
    return out


def scatter_holder(pos: int, letters: Sequence[str], kinds: Sequence[str],
                   kept: str) -> Optional[int]:
    """The operand carrying both ``o`` and ``k`` of pattern ``pos`` alone, when its ``i`` leg
    is in ``kept`` and on nothing else (a fold); None otherwise.

    >>> scatter_holder(1, ["ncol", "iol"], ["v", "pattern"], "nci")
    0
    >>> scatter_holder(1, ["ncol", "iol", "ni"], ["v", "pattern", "v"], "nci") is None
    True
    """
    subs = letters[pos]
    if kinds[pos] != "pattern" or len(set(subs)) != 3:
        return None
    i, o, k = subs
    if i not in kept or any(i in s for q, s in enumerate(letters) if q != pos):
        return None
    holder = exclusive_holder(o, letters, kinds, kept, pos)
    if holder is None or holder != exclusive_holder(k, letters, kinds, kept, pos) or \
            len(set(letters[holder])) != len(letters[holder]):
        return None
    return holder
