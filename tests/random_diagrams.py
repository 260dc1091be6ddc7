"""Random valid diagrams with concrete sizes, and an independent dense evaluator.

The strategy :func:`networks` draws diagrams the way convolutions look (a variable on a
pattern's ``i`` leg, a kernel on its ``k`` leg, a vector on its ``o`` leg, any of them cut
out and its legs left open; a second copy of the input sharing or not sharing the ``o``
legs, as in KFC and KFAC-reduce), then adds random δs joining legs of equal size (also two
legs of one pattern), constants, variables and patterns hung on existing legs, sometimes
independent parts on fresh legs (a disconnected product), and finally a random choice of
open legs, sometimes fused; :func:`diagrams` may wrap it in a ``Sum``.
Sometimes the input's first spatial leg is sub-sampled (tensor dropout): it keeps ``m ≤ I``
positions and its pattern is a sliced pattern whose positions :func:`positions_for` draws.

:func:`dense_value` is the oracle: it knows nothing of tndiag's passes or codegen. It
materialises every Π from its definition (``Π[i,o,k] = 1`` iff ``i = o·S + k·D − P_l`` and
``0 ≤ i < I``), a reduced pattern as that sum over ``o``, a sliced pattern as the rows
``s[j]`` of its Π (``s`` the run-time positions), δs and constants as dense tensors,
and evaluates the whole network with one ``torch.einsum``.
"""

from __future__ import annotations

import math
import string
from typing import Dict, List

import torch
from hypothesis import assume
from hypothesis import strategies as st

from tndiag.errors import VerifyError
from tndiag.ir import (
    Graph,
    Index,
    Kind,
    PatternParams,
    Role,
    Sum,
    Tensor,
    constant,
    delta,
    variable,
    verify,
)

__all__ = ["networks", "diagrams", "dense_value", "assert_matches_oracle", "MAX_ELEMENTS",
           "positions_for"]

#: Bound on the product of all index sizes, so that the dense oracle stays cheap.
MAX_ELEMENTS = 100_000


class _Builder:
    """Tensors drawn so far, and fresh names for tensors and indices."""

    def __init__(self) -> None:
        self.tensors: List[Tensor] = []
        self.count = 0

    def index(self, base: str, size: int) -> Index:
        self.count += 1
        return Index(f"{base}{self.count}", size)

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def indices(self) -> List[Index]:
        found: Dict[str, Index] = {}
        for t in self.tensors:
            for ix in t.indices:
                found.setdefault(ix.name, ix)
        return list(found.values())


@st.composite
def _params(draw):
    """(I, K, params, O) of one pattern with O >= 1."""
    K = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    pad = draw(st.integers(0, 2))
    right = draw(st.sampled_from([pad, pad, draw(st.integers(-1, 2))]))
    params = PatternParams(draw(st.integers(1, 3)), pad, right, dilation)
    I = draw(st.integers(max(1, dilation * (K - 1) + 1 - pad - right), 7))
    O = params.output_size(I, K)
    assume(isinstance(O, int) and O >= 1)
    return I, K, params, O


def _pattern(b: _Builder, name: str, i: Index, o: Index, k: Index, params: PatternParams,
             reduced: bool) -> Tensor:
    if reduced:
        return Tensor(name, Kind.REDUCED, ((i,), (k,)), params=params, out_size=o.size)
    return Tensor(name, Kind.PATTERN, ((i,), (o,), (k,)), params=params)


def _sliced(p: Tensor, j: Index, sample: str) -> Tensor:
    """Pattern ``p`` with its i leg restricted to ``j`` (the positions ``sample``)."""
    i, o, k = p.indices
    return Tensor(p.name, Kind.SLICED, ((j,), (o,), (k,)), params=p.params,
                  full_size=i.size, sample=sample)


@st.composite
def _conv_motif(draw, b: _Builder) -> None:
    """X[n, c, i..] · Π.. · W[d, c, k..] · V[n, d, o..], one of X, W, V maybe cut out,
    and maybe a second copy of X (with its own patterns) sharing the o legs or not."""
    ndim = draw(st.integers(1, 2))
    dims = [draw(_params()) for _ in range(ndim)]
    n, c, d = (b.index(x, draw(st.integers(1, 2))) for x in "ncd")
    i = [b.index("i", I) for I, _, _, _ in dims]
    o = [b.index("o", O) for _, _, _, O in dims]
    k = [b.index("k", K) for _, K, _, _ in dims]
    reduced = draw(st.integers(0, 4)) == 0
    pats = [_pattern(b, b.name("P"), i[j], o[j], k[j], dims[j][2], reduced) for j in range(ndim)]
    sliced = not reduced and draw(st.integers(0, 3)) == 0  # tensor dropout on i[0]
    if sliced:
        i[0] = b.index("j", draw(st.integers(1, dims[0][0])))
        pats[0] = _sliced(pats[0], i[0], "keep_1")
    cut = draw(st.sampled_from(["X", "W", "V", "V", "none"]))
    if cut != "X":
        b.tensors.append(variable("X", [n, c] + i))
    b.tensors += pats
    if cut != "W":
        b.tensors.append(variable("W", [d, c] + k, Role.PARAMETER))
    if cut != "V" and not reduced:
        b.tensors.append(variable("V", [n, d] + o, Role.VECTOR))
    if cut != "X" and draw(st.integers(0, 3)) == 0:  # a second copy of X (KFC / KFAC-reduce)
        shared = draw(st.booleans()) and not reduced
        c2, i2 = b.index("c", c.size), [b.index("i", ix.size) for ix in i]
        k2 = [b.index("k", ix.size) for ix in k]
        o2 = o if shared else [b.index("o", ix.size) for ix in o]
        b.tensors.append(variable("X", [n, c2] + i2))
        second = [_pattern(b, b.name("P"), i2[j], o2[j], k2[j], dims[j][2],
                           reduced or (not shared and draw(st.booleans())))
                  for j in range(ndim)]
        if sliced:  # the same runtime X: the same kept positions
            second[0] = _sliced(_pattern(b, second[0].name, Index("full", dims[0][0]), o2[0],
                                         k2[0], dims[0][2], False), i2[0], "keep_1")
        b.tensors += second


@st.composite
def _extra(draw, b: _Builder) -> None:
    """One more tensor hung on existing legs: a δ, a constant, a variable or a pattern."""
    pool = b.indices()
    kind = draw(st.sampled_from(["delta", "delta", "constant", "variable", "pattern"]))
    if kind == "pattern" or not pool:
        I, K, params, O = draw(_params())
        legs = []
        for base, size in (("i", I), ("o", O), ("k", K)):
            same = [ix for ix in pool if ix.size == size and ix not in legs]
            reuse = same and draw(st.booleans())
            legs.append(draw(st.sampled_from(same)) if reuse else b.index(base, size))
        b.tensors.append(_pattern(b, b.name("P"), *legs, params, draw(st.integers(0, 3)) == 0))
        return
    if kind == "delta":
        first = draw(st.sampled_from(pool))
        same = [ix for ix in pool if ix.size == first.size and ix != first]
        others = draw(st.lists(st.sampled_from(same), max_size=2, unique=True)) if same else []
        legs = [first] + others
        while len(legs) < 2 or draw(st.integers(0, 4)) == 0 and len(legs) < 3:
            legs.append(b.index("e", first.size))
        b.tensors.append(delta(b.name("D"), legs))
        return
    legs = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
    if kind == "constant":
        value = draw(st.sampled_from([2, -1, 0.5, 3, 1]))
        b.tensors.append(constant(b.name("c"), value, legs))
    else:
        role = draw(st.sampled_from(list(Role)))
        b.tensors.append(variable(b.name("A"), legs, role))


@st.composite
def _island(draw, b: _Builder) -> None:
    """An independent part on fresh legs (the product becomes disconnected): a variable,
    sometimes with a pattern on one of its legs or a second variable sharing a leg."""
    legs = [b.index("z", draw(st.integers(1, 3))) for _ in range(draw(st.integers(0, 2)))]
    b.tensors.append(variable(b.name("Z"), legs))
    shape = draw(st.sampled_from(["alone", "pattern", "pair"])) if legs else "alone"
    if shape == "pattern":
        I, K, params, O = draw(_params())
        i = b.index("i", I)
        b.tensors[-1] = variable(b.tensors[-1].name, legs[:1] + [i])
        b.tensors.append(_pattern(b, b.name("P"), i, b.index("o", O), b.index("k", K), params,
                                  draw(st.integers(0, 3)) == 0))
    elif shape == "pair":
        b.tensors.append(variable(b.name("Y"), [legs[-1], b.index("y", draw(st.integers(1, 3)))]))


@st.composite
def _output(draw, b: _Builder):
    chosen = draw(st.permutations(b.indices()))
    chosen = chosen[:draw(st.integers(0, min(4, len(chosen))))]
    axes, rest = [], list(chosen)
    while rest:
        width = draw(st.sampled_from([1, 1, 1, 2])) if len(rest) > 1 else 1
        axes.append(tuple(rest[:width]))
        rest = rest[width:]
    return axes


@st.composite
def networks(draw) -> Graph:
    """A random valid :class:`Graph` with concrete sizes (see the module docstring)."""
    b = _Builder()
    if draw(st.integers(0, 4)) > 0:
        draw(_conv_motif(b))
    for _ in range(draw(st.integers(0 if b.tensors else 1, 3))):
        draw(_extra(b))
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2]))):  # a disconnected product
        draw(_island(b))
    graph = Graph.of(b.tensors, draw(_output(b)))
    assume(math.prod(ix.size for ix in b.indices()) <= MAX_ELEMENTS)
    try:
        verify(graph)
    except VerifyError:  # pragma: no cover - the construction above is valid by design
        assume(False)
    return graph


@st.composite
def diagrams(draw):
    """A random :func:`networks` graph, sometimes a ``Sum`` with a bias-like second term
    (a variable on some of the open legs, broadcast by a ones constant) or a copy of the
    first term with other variable names."""
    first = draw(networks())
    if draw(st.integers(0, 4)) > 0:
        return first
    out = first.output_indices
    if out and draw(st.booleans()):
        legs = draw(st.lists(st.sampled_from(list(out)), max_size=2, unique=True))
        second = Graph(tuple([variable("B", legs), constant("one", 1, list(out)),
                              constant("s", draw(st.sampled_from([2, -0.5])))]), first.output)
    else:
        renamed = {t.name: t.name + "_2" for t in first.variables()}
        second = Graph(tuple(t.replace(name=renamed.get(t.name, t.name))
                             for t in first.tensors), first.output)
    diagram = Sum((first, second))
    verify(diagram)
    return diagram


# -- the oracle --------------------------------------------------------------------------


def positions_for(diagram, gen: torch.Generator) -> Dict[str, torch.Tensor]:
    """Kept positions for every sliced pattern's sample: distinct, in random order."""
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    found = {}
    for term in terms:
        for t in term.tensors:
            if t.kind is Kind.SLICED and t.sample not in found:
                chosen = torch.randperm(int(t.full_size), generator=gen)
                found[t.sample] = chosen[:int(t.indices[0].size)]
    return found


def _dense_pattern(t: Tensor, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Π from its definition; a reduced pattern summed over o; a sliced one's rows s[j]."""
    p = t.params
    I, K = int(t.full_size or t.indices[0].size), int(t.indices[-1].size)
    O = int(t.out_size) if t.kind is Kind.REDUCED else int(t.indices[1].size)
    dense = torch.zeros(I, O, K, dtype=torch.float64)
    for o in range(O):
        for k in range(K):
            i = o * p.stride + k * p.dilation - p.pad_left
            if 0 <= i < I:
                dense[i, o, k] = 1.0
    if t.kind is Kind.SLICED:
        return dense[inputs[t.sample]]
    return dense if t.kind is Kind.PATTERN else dense.sum(1)


def _dense_delta(t: Tensor) -> torch.Tensor:
    size, legs = int(t.indices[0].size), len(t.indices)
    dense = torch.zeros((size,) * legs, dtype=torch.float64)
    for j in range(size):
        dense[(j,) * legs] = 1.0
    return dense


def _operand(t: Tensor, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
    flat = [int(ix.size) for ix in t.indices]
    if t.kind is Kind.VARIABLE:
        return inputs[t.name].to(torch.float64).reshape(flat)
    if t.kind in (Kind.PATTERN, Kind.REDUCED, Kind.SLICED):
        return _dense_pattern(t, inputs)
    if t.kind is Kind.DELTA:
        return _dense_delta(t)
    return torch.full(flat, float(t.value), dtype=torch.float64)


def _graph_value(graph: Graph, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
    letters: Dict[str, str] = {}
    alphabet = iter(string.ascii_letters)
    for ix in [ix for t in graph.tensors for ix in t.indices] + list(graph.output_indices):
        if ix.name not in letters:
            letters[ix.name] = next(alphabet)
    subs = ["".join(letters[ix.name] for ix in t.indices) for t in graph.tensors]
    out = "".join(letters[ix.name] for ix in graph.output_indices)
    operands = [_operand(t, inputs) for t in graph.tensors]
    value = torch.einsum(",".join(subs) + "->" + out, *operands) if operands else \
        torch.ones((), dtype=torch.float64)
    return value.reshape([int(s) for s in graph.output_shape])


def dense_value(diagram, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The value of a diagram by one dense einsum per term (independent of tndiag's codegen)."""
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    return sum(_graph_value(term, inputs) for term in terms)


def assert_matches_oracle(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """Same shape, and max error at most 1e-10 relative to ``max(1, max |want|)``."""
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}"
    if want.numel():
        err = ((got - want).abs().max() / want.abs().max().clamp_min(1.0)).item()
        assert err <= 1e-10, f"{what}: error {err:.3g}"
