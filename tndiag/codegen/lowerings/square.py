"""``square``: a network of two mirrored halves that keep no leg apart is a sum of squares.

The halves ``H1`` and ``H2 = σ(H1)`` (found as for :mod:`~tndiag.codegen.lowerings.gram`)
contract to the same value ``T``; when ``σ`` fixes every open letter of ``T`` the result is
``Σ T ⊙ T`` over the letters of ``T`` that are not open — e.g. the GGN diagonal, the squared
per-sample weight gradients summed over samples and classes. Only ``H1`` is contracted; the
last step squares ``T`` and sums, instead of contracting a second, identical copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from tndiag.codegen.lowerings.base import Entry, EntryKind, Match, State, StepRule, nominal
from tndiag.codegen.lowerings.gram import contract_one_half, half_cost, mirror_key, split_halves
from tndiag.codegen.program import Step, StepKind

__all__ = ["RULE", "SquareSpec", "square_spec"]


@dataclass(frozen=True)
class SquareSpec:
    """``Σ T ⊙ T`` over the axes ``summed`` of ``T``; ``out_perm`` orders what is left
    (None: already in the result's order)."""

    summed: Tuple[int, ...]
    out_perm: Optional[Tuple[int, ...]]


def square_spec(letters: str, result: str) -> Optional[SquareSpec]:
    """Describe ``einsum(T, T -> result)`` of ``T`` with subscripts ``letters``, if every
    letter of ``result`` is one of ``T``'s (each once).

    >>> square_spec("aijb", "jb")
    SquareSpec(summed=(0, 1), out_perm=None)
    >>> square_spec("abc", "cb").out_perm
    (1, 0)
    >>> square_spec("ab", "abc") is None
    True
    """
    if len(set(letters)) != len(letters) or not set(result) <= set(letters) \
            or len(set(result)) != len(result):
        return None
    summed = tuple(j for j, ch in enumerate(letters) if ch not in result)
    left = "".join(ch for ch in letters if ch in result)
    perm = tuple(left.index(ch) for ch in result)
    return SquareSpec(summed, None if perm == tuple(range(len(perm))) else perm)


def _match(state: State) -> List[Match]:
    if len(state.steps) or any(e.kind is EntryKind.MIRROR for e in state.stack):
        return []
    found = split_halves(state.letters(), [mirror_key(op) for op in state.ops], state.out)
    if found is None:
        return []
    first, second, t_letters, sigma = found
    if any(sigma[ch] != ch for ch in t_letters):
        return []  # a leg kept apart in the two copies: a Gram product
    spec = square_spec(t_letters, state.out)
    if spec is None:
        return []
    uids = tuple(state.stack[p].uid for p in first + second)
    return [Match(uids, state.out, (len(first), t_letters, spec))]


def _cost(state: State, match: Match):
    """One half contracted to T (nominal sizes), then a product and a sum over T."""
    half, t_letters, _ = match.info
    return half_cost(state, match.uids[:half], t_letters) + 2 * nominal(state.size(t_letters))


def _apply(state: State, match: Match) -> None:
    half, t_letters, _ = match.info

    def last(st: State, t: Entry, out: str) -> Step:
        found = square_spec(t.letters, out)
        assert found is not None  # T's letters in the order the contraction left them
        return Step(st.positions([t.uid]), t.letters + "," + t.letters + "->" + out,
                    StepKind.SQUARE, found, "square", 2 * st.size(t.letters), st.size(out))
    contract_one_half(state, match.uids[half:], t_letters, last, any_order=True)


RULE = StepRule("square", StepKind.SQUARE, _match, _apply, _cost,
                "mirrored halves keeping no leg apart: contract one, then Σ T ⊙ T")
