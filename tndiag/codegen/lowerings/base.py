"""What a lowering rule sees and changes: the operand stack of one graph being planned.

A :class:`StepRule` is ``(name, kind, match, apply, cost)``: ``match(state)`` lists the places
it applies (frozen, comparable matches naming stack entries by their uid), ``cost(state,
match)`` prices the step it would emit (FLOPs, an int or a formula), and ``apply(state,
match)`` emits it. The driver (:mod:`tndiag.codegen.engine`) accepts a match when its cost
is at most that of the plain einsum of the same operands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar

from tndiag.codegen import cost
from tndiag.codegen.program import LoweringKind, Operand, Step, StepKind
from tndiag.ir.sizes import Size

__all__ = ["StepRule", "Match", "EntryKind", "Entry", "State", "entry_kind", "nominal",
           "NOMINAL", "PATH_OPTIMIZER", "pattern_params", "exclusive_holder"]

#: The one opt_einsum path optimizer the compiler uses (contraction paths and the einsum
#: alternative a structured step is priced against). Dynamic programming first sums every
#: letter that only one operand carries; "auto-hq" picks "optimal" below 5 operands, which
#: does not: the half of a transposed KFAC-reduce (X and two dense Π summed over their ``i``
#: legs) cost it 51 MFLOP against dp's 2.7 MFLOP, so the Gram of the two halves lost to the
#: plain path and both halves were contracted.
PATH_OPTIMIZER = "dp"

#: Value given to every symbol when a contraction path must be chosen for a symbolic graph.
NOMINAL = 16


class EntryKind(enum.Enum):
    """What a stack entry is, as far as the lowering rules care."""

    PATTERN = "pattern"  # an unconsumed dense Π
    REDUCED = "reduced"  # an unconsumed Σ_o Π count matrix
    SLICED = "sliced"  # an unconsumed sliced pattern Π[s[j], o, k]
    VIEW = "view"  # a strided view of a tensor (einsum must copy it)
    TENSOR = "tensor"  # anything else
    MIRROR = "mirror"  # the second half of a mirrored network: never contracted


#: What a rule works on: a :class:`State` (one graph) or the list of a sum's term programs.
On = TypeVar("On")


@dataclass(frozen=True)
class StepRule(Generic[On]):
    """A structured lowering as data (see the module docstring).

    ``kind`` is the step kind it emits (None: it only rewrites operands, e.g. a constant
    folded into the scale).
    """

    name: str
    kind: Optional[StepKind]
    match: Callable[[On], Sequence["Match"]]
    apply: Callable[[On, "Match"], None]
    cost: Callable[[On, "Match"], Size]
    doc: str = ""


@dataclass(frozen=True)
class Match:
    """Where a rule applies: the stack entries ``uids`` it replaces by a step with result
    subscripts ``result``, and what the rule needs to emit it (``info``)."""

    uids: Tuple[int, ...]
    result: str
    info: Any = None


@dataclass
class Entry:
    """One tensor on the runtime stack: its subscripts and what it is."""

    uid: int
    letters: str
    kind: EntryKind
    key: object  # equal keys hold equal values (None: unknown)


def nominal(size: Size) -> int:
    """``size`` as an int, every symbol set to :data:`NOMINAL` (for path searches).

    >>> import sympy; nominal(sympy.Symbol("N") + 1)
    17
    """
    if isinstance(size, int):
        return size
    value = size.subs({s: NOMINAL for s in size.free_symbols})
    return max(1, int(value))


def entry_kind(op: Operand) -> EntryKind:
    """A pattern whose subscripts repeat a letter (a δ joined two of its legs) is a diagonal
    of Π: no structured lowering applies to it, so it stays a plain dense tensor."""
    if len(set(op.letters)) != len(op.letters):
        return EntryKind.TENSOR
    if op.lowering is LoweringKind.DENSE_PATTERN:
        return EntryKind.PATTERN
    if op.lowering is LoweringKind.REDUCED_MATRIX:
        return EntryKind.REDUCED
    if op.lowering is LoweringKind.SLICED_PATTERN:
        return EntryKind.SLICED
    return EntryKind.TENSOR


def value_key(op: Operand) -> object:
    """Provenance of an operand's runtime value (equal keys, equal values up to letters)."""
    if op.lowering is LoweringKind.INPUT:
        return ("input", op.name, tuple(op.shape))
    if op.lowering is LoweringKind.FILL:
        return ("fill", op.tensor.value, tuple(op.shape))
    return None


@dataclass
class State:
    """The planning state of one graph: operands, the runtime stack, steps emitted so far.

    ``deferred`` holds actions run after the contraction path (a mirrored half's Gram step);
    with ``any_order`` the contraction may leave ``out``'s letters in any order (the deferred
    step reads them as they come).
    """

    ops: List[Operand]
    out: str
    allowed: Tuple[str, ...]
    sizes: Dict[str, Size] = field(default_factory=dict)
    stack: List[Entry] = field(default_factory=list)
    steps: List[Step] = field(default_factory=list)
    results: List[Size] = field(default_factory=list)
    temps: List[Size] = field(default_factory=list)
    scale: float = 1.0
    deferred: List[Callable[["State"], None]] = field(default_factory=list)
    uid: int = 0
    any_order: bool = False

    @classmethod
    def of(cls, operands: Sequence[Operand], out: str, allowed: Tuple[str, ...]) -> "State":
        """The state before any step: one stack entry per operand."""
        state = cls(list(operands), out, allowed)
        state.sizes = {ch: s for op in operands for ch, s in zip(op.letters, op.shape)}
        state.restack()
        return state

    def restack(self) -> None:
        """Rebuild the stack from the operands (after operands were removed)."""
        self.stack = [Entry(n, op.letters, entry_kind(op), value_key(op))
                      for n, op in enumerate(self.ops)]
        self.uid = len(self.ops)

    def size(self, letters: str) -> Size:
        """Product of the sizes of ``letters``."""
        return cost.prod(self.sizes[ch] for ch in letters)

    def positions(self, uids: Sequence[int]) -> Tuple[int, ...]:
        """Current stack positions of the entries ``uids``."""
        where = {e.uid: n for n, e in enumerate(self.stack)}
        return tuple(where[u] for u in uids)

    def entry(self, uid: int) -> Entry:
        """The stack entry ``uid``."""
        return self.stack[self.positions([uid])[0]]

    def letters(self) -> List[str]:
        """Subscripts of the stack entries, in stack order."""
        return [e.letters for e in self.stack]

    def kinds(self) -> List[EntryKind]:
        """Kinds of the stack entries, in stack order."""
        return [e.kind for e in self.stack]

    def active(self) -> List[Entry]:
        """Entries still to be contracted (mirrored halves excluded)."""
        return [e for e in self.stack if e.kind is not EntryKind.MIRROR]

    def relower(self, uid: int, lowering: LoweringKind, letters: Optional[str] = None,
                shape: Optional[Tuple[Size, ...]] = None) -> None:
        """Give operand ``uid`` another lowering (and optionally subscripts and shape)."""
        op = self.ops[uid]
        self.ops[uid] = Operand(op.tensor, op.letters if letters is None else letters,
                                op.shape if shape is None else shape, lowering)

    def push(self, uids: Sequence[int], result: str, kind: StepKind, info: Any, label: str,
             flops: Size, temp: Size = 0, entry: EntryKind = EntryKind.TENSOR,
             key: object = None, memory: Optional[Size] = None) -> None:
        """Emit one step: pop the entries ``uids``, push its result ``result``."""
        positions = self.positions(uids)
        taken = [self.stack[p].letters for p in positions]
        memory = self.size(result) if memory is None else memory
        self.steps.append(Step(positions, ",".join(taken) + "->" + result, kind, info, label,
                               flops, memory))
        self.results.append(memory)
        self.temps.append(temp)
        for p in sorted(positions, reverse=True):
            self.stack.pop(p)
        self.stack.append(Entry(self.uid, result, entry, key))
        self.uid += 1

    def held(self, op: Operand) -> Size:
        """Elements a materialized operand occupies (0 for inputs and consumed operands)."""
        if op.lowering in HELD:
            return cost.prod(op.shape)
        return 0

    def costs(self) -> Tuple[Size, Size, Size]:
        """``(flops, largest intermediate, peak memory)`` of the planned steps."""
        flops = sum((s.flops for s in self.steps), 0)
        largest = cost.smax(self.results) if self.results else 0
        held = [self.held(op) for op in self.ops]
        return flops, largest, cost.peak_memory(held, self.steps, self.results, self.temps)


#: Lowerings whose operand is a tensor the backend builds and keeps while the program runs.
HELD = (LoweringKind.DENSE_PATTERN, LoweringKind.REDUCED_MATRIX, LoweringKind.FILL,
        LoweringKind.DENSE_DELTA, LoweringKind.SLICED_PATTERN)


def pattern_params(state: State, uid: int) -> Tuple[int, int, int, int]:
    """(stride, pad_left, pad_right, dilation) of the pattern operand ``uid``."""
    p = state.ops[uid].tensor.pattern_params
    return (p.stride, p.pad_left, p.pad_right, p.dilation)


def exclusive_holder(state: State, letter: str, skip: int) -> Optional[int]:
    """Stack position of the one non-pattern entry carrying ``letter`` (once, and no letter
    twice), when nothing else but entry ``skip`` does and ``letter`` is not in the output."""
    if letter in state.out:
        return None
    letters = state.letters()
    found = [q for q, subs in enumerate(letters) if q != skip and letter in subs]
    if len(found) != 1:
        return None
    q = found[0]
    if state.stack[q].kind is EntryKind.PATTERN or len(set(letters[q])) != len(letters[q]):
        return None
    return q
