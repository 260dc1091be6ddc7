"""Cost model: FLOPs and memory of each step and of a whole program, as ints or formulas.

Sizes are ints for a concrete diagram and sympy expressions for a symbolic one, so every
cost below is a number or a formula in the sizes. Π is priced by its lowering, never as a
dense tensor unless it is one: a strided view costs nothing, a summed pattern ``I·K``
elements, a native convolution ``2·(non-spatial sizes)·∏O·∏K`` FLOPs, and only the dense
fallback ``I·O·K`` elements.

Memory is counted in elements: at each step, the intermediates still alive (results not yet
consumed and materialized pattern operands) plus what the step allocates (its result, and a
contiguous copy of any strided-view operand that einsum or a Gram product must reshape).
"""

from __future__ import annotations

from typing import Dict, Iterable, Sequence

import sympy

from tndiag.ir.sizes import Size

__all__ = ["prod", "smax", "einsum_flops", "native_flops", "pattern_memory", "peak_memory"]


def prod(values: Iterable[Size]) -> Size:
    """Product of sizes (1 when empty).

    >>> prod([2, 3]), prod([sympy.Symbol("N"), 4])
    (6, 4*N)
    """
    out: Size = 1
    for v in values:
        out = out * v
    return out


def smax(values: Sequence[Size]) -> Size:
    """Maximum of sizes: an int when all are ints, else a simplified sympy ``Max``.

    >>> smax([3, 5]), smax([sympy.Symbol("N", positive=True), 2 * sympy.Symbol("N", positive=True)])
    (5, 2*N)
    """
    values = list(values) or [0]
    if all(isinstance(v, int) for v in values):
        return max(values)
    symbolic = [v for v in values if not (isinstance(v, int) and v == 0)]
    return sympy.Max(*symbolic)


def einsum_flops(equation: str, sizes: Dict[str, Size]) -> Size:
    """FLOPs of one einsum: ``2·∏(all letters)`` when it multiplies or sums, else a copy.

    >>> einsum_flops("ab,bc->ac", {"a": 2, "b": 3, "c": 4})
    48
    """
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    letters = set("".join(terms))
    if len(terms) == 1 and letters == set(out):
        return prod(sizes[ch] for ch in out)
    return 2 * prod(sizes[ch] for ch in letters)


def native_flops(spec) -> Size:
    """FLOPs of a native convolution: ``2 · (A and B's non-spatial legs) · ∏O · ∏K``.

    >>> from tndiag.codegen.native import match_native
    >>> m = match_native(["nci", "iok", "dck"], [False, True, False], "ndo",
    ...                  {"n": 2, "c": 3, "i": 8, "o": 6, "k": 3, "d": 4}, {1: (1, 0, 0, 1)})
    >>> native_flops(m[0][1])  # 2 · n c d · o · k
    864
    """
    spatial = spec.a_spatial + spec.b_spatial + spec.out_spatial
    channels = set(spec.a_letters + spec.b_letters) - set(spatial)
    i_legs = {"conv": spec.a_spatial, "transpose": spec.out_spatial, "weight": spec.a_spatial}
    non_i = set(spatial) - set(i_legs[spec.role])
    return 2 * spec.size("".join(sorted(channels))) * spec.size("".join(sorted(non_i)))


def pattern_memory(lowering: str, I: Size, O: Size, K: Size) -> Size:
    """Elements a pattern operand occupies under ``lowering``.

    >>> pattern_memory("dense-pattern", 10, 8, 3), pattern_memory("reduced-matrix", 10, 8, 3)
    (240, 30)
    """
    if lowering == "dense-pattern":
        return I * O * K
    if lowering == "reduced-matrix":
        return I * K
    return 0


def peak_memory(operand_memory: Sequence[Size], steps, result_sizes: Sequence[Size],
                temp_sizes: Sequence[Size]) -> Size:
    """Peak elements alive while running ``steps`` (see the module docstring).

    Args:
        operand_memory: elements held by each initial operand (0 for user inputs and views).
        steps: the program's steps (``positions`` are used).
        result_sizes: elements of each step's result (0 for a view).
        temp_sizes: elements each step allocates temporarily (copies of views).

    >>> from tndiag.codegen.program import Step
    >>> peak_memory([0, 0], [Step((0, 1), "a,a->")], [1], [0])
    1
    """
    live = list(operand_memory)
    peaks = [sum(live, 0)]
    for step, res, tmp in zip(steps, result_sizes, temp_sizes):
        peaks.append(sum(live, 0) + res + tmp)
        for p in sorted(step.positions, reverse=True):
            live.pop(p)
        live.append(res)
    return smax(peaks)
