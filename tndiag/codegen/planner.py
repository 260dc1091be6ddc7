"""The planner: turns the operands of one graph into steps, structured lowerings first.

Order (see :mod:`tndiag.codegen.lowering`): fold constants into the scale; hand convolution
groups to native kernels when the cost model prices them below the einsum alternative;
sum patterns whose ``o`` leg is free; view the remaining patterns through their ``i``
leg; contract what is left along an opt_einsum path, turning a product of a tensor with
itself into a Gram step. Symbolic sizes are priced with their formulas; the path search,
which needs numbers, sees every symbol as :data:`NOMINAL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tndiag.codegen import cost
from tndiag.codegen.gather import gather_flops, gather_spec, match_gathers
from tndiag.codegen.lowering import (
    exclusive_holder,
    gram_spec,
    reduced_patterns,
    scatter_holder,
    scatter_spec,
    view_spec,
    window_spec,
)
from tndiag.codegen.native import match_native
from tndiag.codegen.program import Operand, Step, StepKind

__all__ = ["Planner", "NOMINAL"]

#: A step's fixed cost (dispatch, allocation) in FLOP equivalents, when comparing a one-step
#: native kernel with a multi-step einsum path (about 10 µs at 10 GFLOP/s).
STEP_OVERHEAD_FLOPS = 100_000

#: Value given to every symbol when a contraction path must be chosen for a symbolic graph.
NOMINAL = 16


@dataclass
class _Entry:
    """One tensor on the runtime stack: its subscripts and what it is."""

    uid: int
    letters: str
    kind: str  # "pattern" (an unconsumed dense Π), "view", or "tensor"
    key: object  # equal keys hold equal values (None: unknown)


def _nominal(size) -> int:
    if isinstance(size, int):
        return size
    value = size.subs({s: NOMINAL for s in size.free_symbols})
    return max(1, int(value))


def _pattern_params(op: Operand) -> Tuple[int, int, int, int]:
    p = op.tensor.pattern_params
    return (p.stride, p.pad_left, p.pad_right, p.dilation)


class Planner:
    """Builds the steps of one graph (see the module docstring)."""

    def __init__(self, operands: Sequence[Operand], out: str, allowed: Sequence[str]):
        self.ops = list(operands)
        self.out = out
        self.allowed = set(allowed)
        self.sizes = {ch: s for op in operands for ch, s in zip(op.letters, op.shape)}
        self.stack = [_Entry(n, op.letters, _entry_kind(op), _key(op))
                      for n, op in enumerate(self.ops)]
        self.steps: List[Step] = []
        self.results: List = []
        self.temps: List = []
        self.scale = 1.0
        self._uid = len(self.ops)

    # -- driver ------------------------------------------------------------------------
    def run(self) -> Tuple[List[Step], List[Operand], float]:
        """Plan every step; returns steps, final operands and an extra scalar factor."""
        if "fold-constant" in self.allowed:
            self._fold_constants()
        final = self._split_halves() if "gram" in self.allowed else None
        if "gather" in self.allowed:
            self._gathers()
        if "reshape" in self.allowed:
            self._open_reshapes()
        if "native" in self.allowed:
            self._native()
        if "reduced" in self.allowed:
            self._reduced()
        if "window-sum" in self.allowed:
            self._window_sums()
        if "view" in self.allowed:
            self._views()
        if "scatter" in self.allowed:
            self._scatters()
        self._contract_rest()
        if final is not None:
            self._mirror_gram(*final)
        return self.steps, self.ops, self.scale

    def costs(self):
        """``(flops, largest intermediate, peak memory)`` of the planned steps."""
        flops = sum((s.flops for s in self.steps), 0)
        largest = cost.smax(self.results) if self.results else 0
        held = [self._held(op) for op in self.ops]
        return flops, largest, cost.peak_memory(held, self.steps, self.results, self.temps)

    # -- helpers -----------------------------------------------------------------------
    def _size(self, letters: str):
        return cost.prod(self.sizes[ch] for ch in letters)

    def _held(self, op: Operand):
        if op.lowering in ("dense-pattern", "reduced-matrix", "dense-reduced",
                           "sliced-pattern"):
            return cost.prod(op.shape)
        if op.lowering in ("fill", "dense-delta"):
            return cost.prod(op.shape)
        return 0

    def _positions(self, uids: Sequence[int]) -> Tuple[int, ...]:
        where = {e.uid: n for n, e in enumerate(self.stack)}
        return tuple(where[u] for u in uids)

    def _push(self, uids, result: str, kind: str, info, label: str, flops, temp=0,
              entry_kind: str = "tensor", key=None, memory=None) -> None:
        positions = self._positions(uids)
        taken = [self.stack[p].letters for p in positions]
        memory = self._size(result) if memory is None else memory
        self.steps.append(Step(positions, ",".join(taken) + "->" + result, StepKind(kind), info,
                               label, flops, memory))
        self.results.append(memory)
        self.temps.append(temp)
        for p in sorted(positions, reverse=True):
            self.stack.pop(p)
        self.stack.append(_Entry(self._uid, result, entry_kind, key))
        self._uid += 1

    def _relower(self, uid: int, lowering: str, letters: Optional[str] = None,
                 shape=None) -> None:
        op = self.ops[uid]
        self.ops[uid] = Operand(op.tensor, op.letters if letters is None else letters,
                                op.shape if shape is None else shape, lowering)

    def _kinds(self) -> List[str]:
        return [e.kind for e in self.stack]

    # -- structured lowerings ----------------------------------------------------------
    def _fold_constants(self) -> None:
        for n in reversed(range(len(self.ops))):
            op = self.ops[n]
            others = "".join(o.letters for m, o in enumerate(self.ops) if m != n)
            if op.lowering == "fill" and len(self.ops) > 1 and all(ch in others
                                                                    for ch in op.letters):
                self.scale *= op.tensor.fill_value
                del self.ops[n]
        self.stack = [_Entry(n, op.letters, _entry_kind(op), _key(op))
                      for n, op in enumerate(self.ops)]
        self._uid = len(self.ops)

    def _gathers(self) -> None:
        """Each sliced pattern into the one operand carrying its ``o`` leg (a gather)."""
        while True:
            found = match_gathers([e.letters for e in self.stack], self._kinds(), self.out)
            if not found:
                return
            pos, holder = found[0]
            base, entry = self.stack[holder], self.stack[pos]
            spec, result = gather_spec(base.letters, entry.letters, self.sizes,
                                       _pattern_params(self.ops[entry.uid]))
            self._relower(entry.uid, "gather")
            self._push([base.uid, entry.uid], result, "gather", spec, "gather",
                       gather_flops(result, self.sizes))

    def _open_reshapes(self) -> None:
        """A dense pattern (S = K, no dilation or padding, I = O·K) whose i leg is open only
        splits that output leg into (o, k): the final reshape fuses them, no Π is built."""
        for entry in self.stack:
            if entry.kind != "pattern":
                continue
            i, o, k = entry.letters
            p = self.ops[entry.uid].tensor.pattern_params
            I, O, K = (self.sizes[ch] for ch in (i, o, k))
            # K = 1 (identity Π) is left to the native kernel: for 1×1 input VJPs torch's
            # backward kernel beat the GEMM + layout copy here (docs/benchmarks.md)
            dense = (p.stride == K and p.dilation == 1 and p.pad_left == 0 and p.pad_right == 0
                     and _is_int(I) and I == O * K and len({i, o, k}) == 3 and K != 1)
            others = "".join(e.letters for e in self.stack if e is not entry)
            # o and k must reach the output through other operands: a free o or k is a sum
            if dense and i in self.out and i not in others and o not in self.out \
                    and k not in self.out and o in others and k in others:
                self._relower(entry.uid, "reshape")
                entry.kind, entry.letters = "mirror", ""
                self.out = self.out.replace(i, o + k)

    def _native(self) -> None:
        letters = [e.letters for e in self.stack]
        params = {n: _pattern_params(self.ops[e.uid]) for n, e in enumerate(self.stack)
                  if e.kind == "pattern"}
        matches = match_native(letters, self._kinds(), self.out, self.sizes, params)
        for group, spec in [([self.stack[p].uid for p in g], s) for g, s in matches]:
            native = cost.native_flops(spec)
            subs = [self.stack[p].letters for p in self._positions(group)]
            if _nominal(native) > self._dense_flops(subs, spec.result):
                continue
            uids = group
            for u in uids[2:]:
                self._relower(u, "native")
            nd = spec.ndim
            label = {"conv": f"conv{nd}d", "transpose": f"conv_transpose{nd}d",
                     "weight": f"conv{nd}d-weight"}[spec.role]
            self._push(uids, spec.result, "native", spec, label, native)

    def _dense_flops(self, subs: Sequence[str], result: str) -> int:
        import opt_einsum

        shapes = [tuple(_nominal(self.sizes[ch]) for ch in s) for s in subs]
        path, info = opt_einsum.contract_path(",".join(subs) + "->" + result, *shapes,
                                              shapes=True, optimize="auto-hq")
        return int(info.opt_cost) + STEP_OVERHEAD_FLOPS * (len(path) - 1)

    def _reduced(self) -> None:
        letters = [e.letters for e in self.stack]
        for pos in reduced_patterns(letters, self._kinds(), self.out):
            entry = self.stack[pos]
            i, _, k = entry.letters
            self._relower(entry.uid, "reduced-matrix", i + k, (self.sizes[i], self.sizes[k]))
            entry.letters, entry.kind = i + k, "reduced"
            entry.key = ("reduced", _pattern_params(self.ops[entry.uid]), self.sizes[i],
                         self.sizes[k], self.ops[entry.uid].tensor.shape)

    def _window_sums(self) -> None:
        """Sum each summed pattern into its only partner, last axis first (contiguous)."""
        while True:
            letters, kinds = [e.letters for e in self.stack], self._kinds()
            found = []
            for pos, entry in enumerate(self.stack):
                if entry.kind != "reduced" or not _is_int(self.sizes[entry.letters[0]]):
                    continue
                holder = exclusive_holder(entry.letters[0], letters, kinds, self.out, pos)
                if holder is not None and kinds[holder] != "reduced" and \
                        len(set(letters[holder])) == len(letters[holder]):
                    found.append((letters[holder].index(entry.letters[0]), holder, pos))
            if not found:
                return
            axis, holder, pos = max(found)
            base, entry = self.stack[holder], self.stack[pos]
            i, k = entry.letters
            op = self.ops[entry.uid]
            t = op.tensor
            O = int(t.out_size) if t.out_size is not None else int(t.indices[1].size)
            p = t.pattern_params
            spec = window_spec(axis, int(self.sizes[i]), O, int(self.sizes[k]), p.stride,
                               p.pad_left, p.dilation)
            self._relower(entry.uid, "window-sum")
            result = base.letters.replace(i, "") + k
            self._push([base.uid, entry.uid], result, "window-sum", spec, "window-sum",
                       self._size(base.letters))

    def _views(self) -> None:
        changed = True
        while changed:
            changed = False
            letters, kinds = [e.letters for e in self.stack], self._kinds()
            by_holder: Dict[int, List[int]] = {}
            for pos, entry in enumerate(self.stack):
                if entry.kind == "pattern":
                    holder = exclusive_holder(entry.letters[0], letters, kinds, self.out, pos)
                    if holder is not None and len(set(letters[holder])) == len(letters[holder]):
                        by_holder.setdefault(holder, []).append(pos)
            if by_holder:
                holder, pats = next(iter(by_holder.items()))
                self._view(self.stack[holder], [self.stack[p] for p in pats])
                changed = True

    def _view(self, base: _Entry, pats: List[_Entry]) -> None:
        """One view step of ``base`` through all of ``pats`` (their i legs are on it alone)."""
        spec, result = view_spec(base.letters, [p.letters for p in pats],
                                 [_pattern_params(self.ops[p.uid]) for p in pats],
                                 [self.sizes[p.letters[2]] for p in pats])
        for p in pats:
            self._relower(p.uid, "view")
        key = None if base.key is None else ("view", base.key, spec)
        pad = 0
        if any(l or r for l, r in spec.pads):  # the view holds one zero-padded copy
            pad = cost.prod(self.sizes[ch] + sum(spec.pads[spec.axes.index(n)])
                            if n in spec.axes else self.sizes[ch]
                            for n, ch in enumerate(base.letters))
        self._push([base.uid] + [p.uid for p in pats], result, "view", spec, spec.label, 0,
                   entry_kind="view", key=key, memory=pad)

    def _scatters(self) -> None:
        """Patterns whose o and k legs lie on one tensor alone and whose i leg is open only:
        one scatter step per tensor (col2im), all its patterns at once."""
        by_holder: Dict[int, List[_Entry]] = {}
        for pos, entry in enumerate(self.stack):
            holder = self._scatter_holder(pos)
            if holder is not None:
                by_holder.setdefault(holder, []).append(entry)
        for holder, pats in by_holder.items():
            base = self.stack[holder]
            params = [_pattern_params(self.ops[p.uid]) for p in pats]
            sizes = [tuple(self.sizes[ch] for ch in p.letters) for p in pats]
            spec, result = scatter_spec(base.letters, [p.letters for p in pats], params, sizes)
            for p in pats:
                self._relower(p.uid, "scatter")
            self._push([base.uid] + [p.uid for p in pats], result, "scatter", spec, "scatter",
                       self._size(base.letters))

    def _scatter_holder(self, pos: int) -> Optional[int]:
        return scatter_holder(pos, [e.letters for e in self.stack], self._kinds(), self.out)

    # -- mirror halves: contract one half, then a Gram product ---------------------------
    def _split_halves(self):
        letters = [e.letters for e in self.stack]
        found = split_halves(letters, [_pair_key(op) for op in self.ops], self.out)
        if found is None:
            return None
        first, second, t_letters, sigma = found
        b_letters = "".join(sigma[ch] for ch in t_letters)
        shape = tuple(self.sizes[ch] for ch in t_letters)
        spec = gram_spec(t_letters, b_letters, self.out, shape)
        if spec is None:
            return None
        for pos in second:
            self._relower(self.stack[pos].uid, "mirror")
            self.stack[pos].kind, self.stack[pos].letters = "mirror", ""
        final_out, self.out = self.out, t_letters
        return final_out, b_letters, spec

    def _mirror_gram(self, final_out: str, b_letters: str, spec) -> None:
        (t,) = self._active()
        self.out = final_out
        equation = t.letters + "," + b_letters + "->" + final_out
        flops = cost.einsum_flops(equation, self.sizes)
        positions = self._positions([t.uid])
        self.steps.append(Step(positions, equation, StepKind.GRAM, spec, "gram", flops,
                               self._size(final_out)))
        self.results.append(self._size(final_out))
        self.temps.append(self._size(t.letters))
        self.stack.pop(positions[0])
        self.stack.append(_Entry(self._uid, final_out, "tensor", None))
        self._uid += 1

    # -- the rest: einsum along a path -------------------------------------------------
    def _active(self) -> List[_Entry]:
        return [e for e in self.stack if e.kind != "mirror"]

    def _contract_rest(self) -> None:
        active = self._active()
        if len(active) == 1:
            e = active[0]
            if e.letters != self.out:
                temp = self._size(e.letters) if e.kind == "view" else 0
                self._push([e.uid], self.out, "einsum", None, "einsum",
                           cost.einsum_flops(e.letters + "->" + self.out, self.sizes), temp)
            return
        for positions in self._path(active):
            self._pairwise([active[p].uid for p in positions])
            active = self._active()

    def _path(self, active: List[_Entry]) -> List[Tuple[int, ...]]:
        import opt_einsum

        subs = [e.letters for e in active]
        shapes = [tuple(_nominal(self.sizes[ch]) for ch in s) for s in subs]
        path, _ = opt_einsum.contract_path(",".join(subs) + "->" + self.out, *shapes,
                                           shapes=True, optimize="auto-hq")
        return [tuple(sorted(p)) for p in path]

    def _pairwise(self, uids: List[int]) -> None:
        positions = self._positions(uids)
        taken = [self.stack[p] for p in positions]
        active = self._active()
        rest = "".join(e.letters for e in active if e.uid not in uids)
        last = len(active) == len(uids)
        keep = set(rest) | set(self.out)
        result = self.out if last else "".join(
            dict.fromkeys(ch for e in taken for ch in e.letters if ch in keep))
        equation = ",".join(e.letters for e in taken) + "->" + result
        flops = cost.einsum_flops(equation, self.sizes)
        temp = sum((self._size(e.letters) for e in taken if e.kind == "view"), 0)
        gram = self._gram(taken, result)
        if gram is not None:
            copy = self._size(taken[0].letters)
            self._push(uids, result, "gram", gram, "gram", flops, copy)
            return
        self._push(uids, result, "einsum", None, "einsum", flops, temp)

    def _gram(self, taken: List[_Entry], result: str):
        if ("gram" not in self.allowed or len(taken) != 2 or taken[0].key is None
                or taken[0].key != taken[1].key):
            return None
        shape = tuple(self.sizes[ch] for ch in taken[0].letters)
        return gram_spec(taken[0].letters, taken[1].letters, result, shape)


def _is_int(size) -> bool:
    return isinstance(size, int)


def _entry_kind(op: Operand) -> str:
    """A pattern whose subscripts repeat a letter (a δ joined two of its legs) is a diagonal
    of Π: no structured lowering applies to it, so it stays a plain dense tensor."""
    if len(set(op.letters)) != len(op.letters):
        return "tensor"
    if op.lowering == "dense-pattern":
        return "pattern"
    if op.lowering == "reduced-matrix":
        return "reduced"
    if op.lowering == "sliced-pattern":
        return "sliced"
    return "tensor"


def _pair_key(op: Operand):
    """What must match for two operands to be mirror images (None: never)."""
    t = op.tensor
    if op.lowering == "input":
        return ("input", op.name, tuple(op.shape))
    if op.lowering == "fill":
        return ("fill", t.value, tuple(op.shape))
    if op.lowering in ("dense-pattern", "reduced-matrix"):
        return (op.lowering, t.params, t.out_size, tuple(op.shape))
    return None


def split_halves(letters: Sequence[str], keys: Sequence[object], out: str):
    """Split operands into two mirror halves ``H1, H2 = σ(H1)`` sharing only fixed letters.

    Operands with equal keys pair up in order (the first half of each key's occurrences
    with the second half).

    Returns ``(H1 positions, H2 positions, T letters, σ)`` where ``T`` holds H1's fixed letters
    and its kept letters, so that the result is ``einsum(T, σ(T) -> out)``; None otherwise.

    >>> split_halves(["nci", "ik", "nCI", "IK"], ["x", "r", "x", "r"], "ckCK")[:3]
    ([0, 1], [2, 3], 'nck')
    """
    if any(k is None for k in keys) or len(keys) < 2:
        return None
    groups: Dict[object, List[int]] = {}
    for pos, key in enumerate(keys):
        groups.setdefault(key, []).append(pos)
    if any(len(g) % 2 for g in groups.values()):
        return None
    pairs = sorted((a, b) for g in groups.values() for a, b in zip(g[:len(g) // 2],
                                                                   g[len(g) // 2:]))
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    sigma: Dict[str, str] = {}
    for a, b in zip(first, second):
        for x, y in zip(letters[a], letters[b]):
            if sigma.setdefault(x, y) != y:
                return None
    h1 = set("".join(letters[p] for p in first))
    h2 = set("".join(letters[p] for p in second))
    moved = {x for x, y in sigma.items() if x != y}
    if len(set(sigma.values())) != len(sigma) or moved & h2 or {sigma[x] for x in moved} & h1:
        return None
    if any((x in out) != (sigma[x] in out) for x in moved) or set(out) - h1 - h2:
        return None
    fixed = "".join(dict.fromkeys(x for p in first for x in letters[p] if x not in moved))
    kept = "".join(dict.fromkeys(x for p in first for x in letters[p] if x in moved and x in out))
    return first, second, fixed + kept, sigma


def _key(op: Operand):
    """Provenance of an operand's runtime value (equal keys, equal values up to letters)."""
    if op.lowering == "input":
        return ("input", op.name, tuple(op.shape))
    if op.lowering == "fill":
        return ("fill", op.tensor.value, tuple(op.shape))
    return None

