"""``gram``: a tensor contracted with itself becomes one reshape and ``M Mᵀ``.

Two places: a network made of two mirrored halves ``H2 = σ(H1)`` that share only the
letters ``σ`` fixes (KFC, KFAC-reduce, GGN Gram) — only ``H1`` is contracted, to ``T``, and
the last step is ``T σ(T)ᵀ``; and a pairwise step of the contraction path whose two operands
hold the same value (:func:`pairwise`). The mirror is an automorphism of the operand–letter
graph found by networkx (VF2): an involution that moves every operand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import (
    PATH_OPTIMIZER,
    Entry,
    EntryKind,
    Match,
    State,
    StepRule,
    nominal,
)
from tndiag.codegen.program import LoweringKind, Operand, Step, StepKind
from tndiag.ir.sizes import Size

__all__ = ["RULE", "GramSpec", "gram_spec", "split_halves", "pairwise", "mirror_key",
           "half_cost", "contract_one_half"]

#: Automorphisms tried before giving up on a mirror (symmetric diagrams have few).
MOST_AUTOMORPHISMS = 64


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
    return GramSpec(tuple(batch + kept + summed), tuple(shape[j] for j in batch),
                    tuple(shape[j] for j in kept), cost.prod(shape[j] for j in summed),
                    order, tuple(order.index(ch) for ch in result))


def _network(letters: Sequence[str], keys: Sequence[object], out: str) -> Any:
    """Operands and letters as nodes; an edge per leg, labelled by its slots."""
    import networkx as nx

    g = nx.Graph()
    for pos, (subs, key) in enumerate(zip(letters, keys)):
        g.add_node(("t", pos), key=key)
        for ch in set(subs):
            g.add_node(("l", ch), key=ch in out)
            g.add_edge(("t", pos), ("l", ch),
                       slots=tuple(j for j, c in enumerate(subs) if c == ch))
    return g


def _halves(letters: Sequence[str], out: str, phi: Dict[tuple, tuple]):
    """``(H1, H2, T letters, σ)`` if the automorphism ``phi`` is a mirror, else None."""
    n = len(letters)
    image = [phi[("t", p)][1] for p in range(n)]
    if any(image[p] == p or image[image[p]] != p for p in range(n)):
        return None
    first = [p for p in range(n) if p < image[p]]
    second = [image[p] for p in first]
    sigma = {node[1]: phi[node][1] for node in phi if node[0] == "l"}
    moved = {x for x, y in sigma.items() if x != y}
    h2 = set("".join(letters[p] for p in second))
    if moved & h2 & set("".join(letters[p] for p in first)):
        return None
    fixed = "".join(dict.fromkeys(x for p in first for x in letters[p] if x not in moved))
    kept = "".join(dict.fromkeys(x for p in first for x in letters[p] if x in moved and x in out))
    return first, second, fixed + kept, sigma


def split_halves(letters: Sequence[str], keys: Sequence[object], out: str):
    """Split operands into two mirror halves ``H1, H2 = σ(H1)`` sharing only fixed letters.

    ``keys`` say which operands may be images of each other (None: never).

    Returns ``(H1 positions, H2 positions, T letters, σ)`` where ``T`` holds H1's fixed letters
    and its kept letters, so that the result is ``einsum(T, σ(T) -> out)``; None otherwise.

    >>> split_halves(["nci", "ik", "nCI", "IK"], ["x", "r", "x", "r"], "ckCK")[:3]
    ([0, 1], [2, 3], 'nck')
    """
    counts: Dict[object, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    # a mirror pairs operands of equal keys: an odd count rules it out before the automorphism
    # search (which took about 0.6 ms of an uncached compile of a plain 2-d conv, measured)
    if None in counts or len(keys) < 2 or any(c % 2 for c in counts.values()):
        return None
    from networkx.algorithms.isomorphism import GraphMatcher

    g = _network(letters, keys, out)
    matcher = GraphMatcher(g, g, node_match=lambda a, b: a["key"] == b["key"],
                           edge_match=lambda a, b: a["slots"] == b["slots"])
    for count, phi in enumerate(matcher.isomorphisms_iter()):
        found = _halves(letters, out, phi)
        if found is not None or count >= MOST_AUTOMORPHISMS:
            return found
    return None


def mirror_key(op: Operand) -> object:
    """What must match for two operands to be mirror images (None: never)."""
    t = op.tensor
    if op.lowering is LoweringKind.INPUT:
        return ("input", op.name, tuple(op.shape))
    if op.lowering is LoweringKind.FILL:
        return ("fill", t.value, tuple(op.shape))
    if op.lowering in (LoweringKind.DENSE_PATTERN, LoweringKind.REDUCED_MATRIX):
        return (op.lowering.value, t.params, t.out_size, tuple(op.shape))
    return None


def _match(state: State) -> List[Match]:
    if len(state.steps) or any(e.kind is EntryKind.MIRROR for e in state.stack):
        return []
    found = split_halves(state.letters(), [mirror_key(op) for op in state.ops], state.out)
    if found is None:
        return []
    first, second, t_letters, sigma = found
    b_letters = "".join(sigma[ch] for ch in t_letters)
    spec = gram_spec(t_letters, b_letters, state.out, tuple(state.sizes[ch] for ch in t_letters))
    if spec is None:
        return []
    uids = tuple(state.stack[p].uid for p in first + second)
    return [Match(uids, state.out, (len(first), t_letters, b_letters, spec))]


def half_cost(state: State, uids, t_letters: str) -> int:
    """FLOPs of contracting the entries ``uids`` (one mirrored half) to ``t_letters``, along
    one path at nominal sizes."""
    import opt_einsum

    subs = [state.entry(u).letters for u in uids]
    shapes = [tuple(nominal(state.sizes[ch]) for ch in s) for s in subs]
    _, info = opt_einsum.contract_path(",".join(subs) + "->" + t_letters, *shapes,
                                       shapes=True, optimize=PATH_OPTIMIZER)
    return int(info.opt_cost)


def _cost(state: State, match: Match):
    """One half contracted to T (nominal sizes), then the Gram product."""
    half, t_letters, b_letters, _ = match.info
    return half_cost(state, match.uids[:half], t_letters) + nominal(cost.einsum_flops(
        t_letters + "," + b_letters + "->" + state.out, state.sizes))


def contract_one_half(state: State, mirrored: Sequence[int], t_letters: str,
                      last: Callable[[State, Entry, str], Step], any_order: bool = False) -> None:
    """Mark the entries ``mirrored`` (the second half) as never contracted, have the first
    half contracted to ``t_letters`` (in any order with ``any_order``), and defer the last
    step: ``last(state, T's entry, result letters)``, which reads T once."""
    final_out = state.out
    for u in mirrored:
        state.relower(u, LoweringKind.MIRROR)
        entry = state.entry(u)
        entry.kind, entry.letters = EntryKind.MIRROR, ""
    state.out, state.any_order = t_letters, any_order

    def finish(st: State) -> None:
        (t,) = st.active()
        st.out, st.any_order = final_out, False
        step = last(st, t, final_out)
        st.steps.append(step)
        st.results.append(step.memory)
        st.temps.append(st.size(t.letters))
        st.stack.pop(step.positions[0])
        st.stack.append(Entry(st.uid, final_out, EntryKind.TENSOR, None))
        st.uid += 1
    state.deferred.append(finish)


def _apply(state: State, match: Match) -> None:
    half, t_letters, b_letters, spec = match.info

    def last(st: State, t: Entry, out: str) -> Step:
        equation = t.letters + "," + b_letters + "->" + out
        return Step(st.positions([t.uid]), equation, StepKind.GRAM, spec, "gram",
                    cost.einsum_flops(equation, st.sizes), st.size(out))
    contract_one_half(state, match.uids[half:], t_letters, last)


def pairwise(state: State, taken: Sequence[Entry], result: str) -> Optional[GramSpec]:
    """The Gram form of a pairwise step of two entries holding the same value, if allowed."""
    if ("gram" not in state.allowed or len(taken) != 2 or taken[0].key is None
            or taken[0].key != taken[1].key):
        return None
    shape = tuple(state.sizes[ch] for ch in taken[0].letters)
    return gram_spec(taken[0].letters, taken[1].letters, result, shape)


RULE = StepRule("gram", StepKind.GRAM, _match, _apply, _cost,
                "mirrored halves: contract one, then M Mᵀ")
