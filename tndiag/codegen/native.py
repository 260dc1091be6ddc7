"""Recognise contractions that *are* convolutions and describe them for torch's kernels.

A group ``{A, B, Π_1..Π_D}`` of operands is a native convolution when every pattern
``Π_d[i, o, k]`` has its legs split between A and B in one of three ways (the *role*):

| role          | A carries | B carries | result carries | torch kernel |
|---------------|-----------|-----------|----------------|--------------|
| ``conv``      | i         | k         | o              | ``conv{1,2,3}d`` |
| ``transpose`` | o         | k         | i              | ``conv_transpose{1,2,3}d`` |
| ``weight``    | i         | o         | k              | ``convolution_backward`` (weight) |

The other legs of A and B are classified structurally, not by name: on both and kept → groups;
on both and summed → the contracted channel (the batch, for ``weight``); on one only and kept
→ that side's free legs (batch / output channels); on one only and summed → summed beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tndiag.ir.sizes import Size

__all__ = ["NativeConv", "match_native", "KERNELS"]


@dataclass(frozen=True)
class NativeConv:
    """A convolution-family contraction of operands A and B (letters are einsum subscripts).

    Attributes:
        role: ``conv``, ``transpose`` or ``weight`` (see the module table).
        a_sum, b_sum: letters summed out of A / B before the kernel.
        group, channel, a_free, b_free: letter groups (see the module docstring).
        a_spatial, b_spatial, out_spatial: one letter per pattern, in kernel dimension order.
        stride, pad_left, pad_right, dilation: per dimension, from the patterns.
        sizes: size of every letter involved.
        bias: letters of a bias operand on the output channels (``group + b_free`` in some
            order) handed to the kernel, ``""`` for none (:mod:`tndiag.codegen.fuse`);
            ``bias_scale`` multiplies it.
        kernel: for ``transpose``, the torch kernel the cost model chose
            (:func:`tndiag.codegen.cost.native_kernel`): ``"input-grad"`` (the input gradient
            of ``convolution_backward``, where the geometry is a convolution's adjoint) or
            ``""`` (``conv_transpose{1,2,3}d``); ``""`` for the other roles.
    """

    role: str
    a_letters: str
    b_letters: str
    a_sum: str
    b_sum: str
    group: str
    channel: str
    a_free: str
    b_free: str
    a_spatial: str
    b_spatial: str
    out_spatial: str
    stride: Tuple[int, ...]
    pad_left: Tuple[int, ...]
    pad_right: Tuple[int, ...]
    dilation: Tuple[int, ...]
    sizes: Tuple[Tuple[str, Size], ...]
    bias: str = ""
    bias_scale: float = 1.0
    kernel: str = ""

    @property
    def result(self) -> str:
        """Letters of the kernel's result, in order."""
        if self.role == "weight":
            return self.group + self.b_free + self.a_free + self.out_spatial
        return self.a_free + self.group + self.b_free + self.out_spatial

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.out_spatial)

    def size(self, letters: str):
        """Product of the sizes of ``letters``."""
        table = dict(self.sizes)
        out = 1
        for ch in letters:
            out = out * table[ch]
        return out


#: Role -> the torch kernels its step may call (``NativeConv.kernel``; ``""`` is the role's
#: kernel of the module table, the default); the cost model chooses
#: (:func:`tndiag.codegen.cost.native_kernel`).
KERNELS: Dict[str, Tuple[str, ...]] = {
    "conv": ("",),
    "transpose": ("", "input-grad"),
    "weight": ("",),
}

_ROLES = {  # role -> (leg of Π on A, leg on B, leg in the result); legs: 0=i, 1=o, 2=k
    "conv": (0, 2, 1),
    "transpose": (1, 2, 0),
    "weight": (0, 1, 2),
}


def _role_of(p: str, holders: Dict[str, List[int]], pi: int) -> Optional[Tuple[str, int, int]]:
    """(role, A position, B position) for pattern letters ``p`` (i, o, k), or None."""
    for role, (la, lb, lr) in _ROLES.items():
        a, b = holders[p[la]], holders[p[lb]]
        if len(a) == 1 and len(b) == 1 and a[0] != b[0] and min(a[0], b[0]) >= 0:
            if a[0] not in holders[p[lr]] and b[0] not in holders[p[lr]]:
                return role, a[0], b[0]
    return None


def match_native(letters: Sequence[str], patterns: Sequence[bool], kept: str,
                 sizes: Dict[str, Size], params: Dict[int, tuple],
                 max_ndim: int = 3) -> List[Tuple[Tuple[int, ...], NativeConv]]:
    """Find native convolutions among operands.

    Args:
        letters: subscripts of each operand.
        patterns: per operand, whether it is a Π whose structure may be used.
        kept: letters of the final output.
        sizes: size per letter.
        params: operand position -> (stride, pad_left, pad_right, dilation) for patterns.
        max_ndim: largest number of spatial dimensions torch has kernels for.

    Returns:
        ``[(operand positions (A, B, Π..), NativeConv)]``, operands used at most once.

    >>> m = match_native(["nci", "iok", "dck"], [False, True, False], "ndo",
    ...                  {"n": 2, "c": 3, "i": 8, "o": 6, "k": 3, "d": 4}, {1: (1, 0, 0, 1)})
    >>> m[0][0], m[0][1].role, m[0][1].result
    ((0, 2, 1), 'conv', 'ndo')
    """
    holders: Dict[str, List[int]] = {}
    for pos, subs in enumerate(letters):
        if not patterns[pos]:
            for ch in set(subs):
                holders.setdefault(ch, []).append(pos)
    groups: Dict[Tuple[str, int, int], List[int]] = {}
    for pos, subs in enumerate(letters):
        if patterns[pos] and len(set(subs)) == 3:
            found = _role_of(subs, _with_output(holders, kept, letters, patterns, pos), pos)
            if found is not None:
                groups.setdefault(found, []).append(pos)
    used: set = set()
    out = []
    for (role, a, b), pats in groups.items():
        if a in used or b in used or len(pats) > max_ndim:
            continue
        spec = _spec(role, a, b, pats, letters, kept, sizes, params)
        if spec is not None:
            used.update((a, b, *pats))
            out.append(((a, b, *pats), spec))
    return out


def _with_output(holders, kept, letters, patterns, pos) -> Dict[str, List[int]]:
    """Holders of each letter, counting the output (-1) and other patterns (-2 - position)."""
    table = {ch: list(v) for ch, v in holders.items()}
    for ch in kept:
        table.setdefault(ch, []).append(-1)
    for q, subs in enumerate(letters):
        if patterns[q] and q != pos:
            for ch in subs:
                table.setdefault(ch, []).append(-2 - q)
    for ch in letters[pos]:
        table.setdefault(ch, [])
    return table


def _spec(role, a, b, pats, letters, kept, sizes, params) -> Optional[NativeConv]:
    la, lb = letters[a], letters[b]
    if len(set(la)) != len(la) or len(set(lb)) != len(lb):
        return None
    legs = _ROLES[role]
    a_sp = "".join(letters[p][legs[0]] for p in pats)
    b_sp = "".join(letters[p][legs[1]] for p in pats)
    r_sp = "".join(letters[p][legs[2]] for p in pats)
    others = set().union(*(set(letters[q]) for q in range(len(letters)) if q not in (a, b, *pats)))
    keep = set(kept) | others | set(r_sp)
    rest_a = [ch for ch in la if ch not in a_sp]
    rest_b = [ch for ch in lb if ch not in b_sp]
    if set(r_sp) & (set(la) | set(lb)):
        return None
    both = [ch for ch in rest_a if ch in rest_b]
    pick = lambda seq, cond: "".join(ch for ch in seq if cond(ch))  # noqa: E731
    stride, pl, pr, dil = zip(*(params[p] for p in pats))
    return NativeConv(
        role, la, lb,
        a_sum=pick(rest_a, lambda c: c not in lb and c not in keep),
        b_sum=pick(rest_b, lambda c: c not in la and c not in keep),
        group=pick(both, lambda c: c in keep), channel=pick(both, lambda c: c not in keep),
        a_free=pick(rest_a, lambda c: c not in lb and c in keep),
        b_free=pick(rest_b, lambda c: c not in la and c in keep),
        a_spatial=a_sp, b_spatial=b_sp, out_spatial=r_sp, stride=tuple(stride),
        pad_left=tuple(pl), pad_right=tuple(pr), dilation=tuple(dil),
        sizes=tuple(sorted((ch, sizes[ch]) for ch in set(la) | set(lb) | set(r_sp))))
