"""The frozen, printable result of compilation: no tensors inside, only the plan.

A :class:`Program` lists its operands (each with the lowering of its node kind), then the
steps that contract them. A step is an ``einsum`` or a structured lowering (a native
convolution kernel, a strided view, a Gram product; see :mod:`tndiag.codegen.lowering`);
its printout names the lowering and its cost. Costs are ints for concrete diagrams and
sympy formulas for symbolic ones (:func:`tndiag.codegen.plan`).
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

from tndiag.errors import UnknownNameError
from tndiag.ir import Tensor
from tndiag.ir.sizes import Size

__all__ = ["Operand", "LoweringKind", "Step", "StepKind", "Program", "SumProgram",
           "SlicedProgram", "Chunk", "ChunkPlan", "AnyProgram", "BACKENDS", "BACKEND_EXPORTS",
           "backend", "sample_inputs"]

#: Backend name -> module whose ``run(program, *args, **kwargs)`` evaluates a program. The
#: module is imported on first use, so codegen never imports a backend; a second backend is
#: one more row. A backend keeps whatever it prepares per program itself.
BACKENDS: Dict[str, str] = {"torch": "tndiag.backends.torch"}

#: Backend name -> module whose ``program_functions`` and ``kernel_source`` write a program
#: as standalone code (:func:`tndiag.codegen.export.export`), found like :data:`BACKENDS`.
BACKEND_EXPORTS: Dict[str, str] = {"torch": "tndiag.backends.torch_export"}

_RUNNERS: Dict[str, Callable[..., Any]] = {}


def backend(name: str = "torch") -> Callable[..., Any]:
    """The ``run`` function of the backend called ``name`` (see :data:`BACKENDS`).

    >>> backend("torch").__module__
    'tndiag.backends.torch'
    """
    found = _RUNNERS.get(name)
    if found is None:
        if name not in BACKENDS:
            raise UnknownNameError(f"backend {name!r} is unknown; expected one of "
                                   f"{sorted(BACKENDS)}")
        found = _RUNNERS[name] = importlib.import_module(BACKENDS[name]).run
    return found


class LoweringKind(str, enum.Enum):
    """How the backend obtains an operand (see :mod:`tndiag.codegen.lowering`).

    >>> LoweringKind("view").consumed, LoweringKind.FILL.consumed
    (True, False)
    """

    INPUT = "input"  # the user's tensor, reshaped to its flat legs
    DENSE_PATTERN = "dense-pattern"  # the 0/1 tensor [I, O, K]
    REDUCED_MATRIX = "reduced-matrix"  # the counts Σ_o Π as [I, K]
    MERGE = "merge"  # a δ whose legs became one letter: no operand
    DENSE_DELTA = "dense-delta"  # a δ with two open legs, as a dense tensor
    SCALE = "scale"  # a scalar constant: a factor of the program
    FILL = "fill"  # a constant with legs, as a filled tensor
    NATIVE = "native"  # a pattern inside a native convolution step
    VIEW = "view"  # a pattern inside a strided-view step
    MIRROR = "mirror"  # an operand of a mirrored half (its Gram step uses the other half)
    WINDOW_SUM = "window-sum"  # a summed pattern inside a window-sum step
    BROADCAST = "broadcast"  # a constant fill inside a broadcast step
    SCATTER = "scatter"  # a pattern inside a scatter (col2im) step
    SLICED_PATTERN = "sliced-pattern"  # Π[s[j], o, k] built from the call's kept positions
    GATHER = "gather"  # a sliced pattern inside a gather step (the kept positions themselves)

    @property
    def consumed(self) -> bool:
        """Whether the operand lives inside a structured step (no runtime tensor of its own)."""
        return self in _CONSUMED


_CONSUMED = frozenset({LoweringKind.NATIVE, LoweringKind.VIEW, LoweringKind.MIRROR,
                       LoweringKind.WINDOW_SUM, LoweringKind.BROADCAST, LoweringKind.SCATTER})


@dataclass(frozen=True)
class Operand:
    """One operand of the contraction and how the backend obtains it.

    Attributes:
        tensor: the IR tensor it stands for.
        letters: einsum subscripts of its flat legs (repeats allowed: a diagonal).
        shape: flat runtime shape, one size per letter.
        lowering: its :class:`LoweringKind` (a name is converted); operands consumed by a
            structured step (``native``, ``view``, ...) are never materialized.
    """

    tensor: Tensor
    letters: str
    shape: Tuple[Size, ...]
    lowering: LoweringKind

    def __post_init__(self) -> None:
        if not isinstance(self.lowering, LoweringKind):
            object.__setattr__(self, "lowering", LoweringKind(self.lowering))

    @property
    def name(self) -> str:
        """The IR tensor's name."""
        return self.tensor.name


class StepKind(str, enum.Enum):
    """The kinds of contraction step; each backend has one runner per kind.

    >>> StepKind("window-sum").allocates, StepKind.VIEW.allocates
    (True, False)
    """

    EINSUM = "einsum"
    NATIVE = "native"
    VIEW = "view"
    GRAM = "gram"
    SQUARE = "square"
    WINDOW_SUM = "window-sum"
    BROADCAST = "broadcast"
    SCATTER = "scatter"
    GATHER = "gather"
    PATCH_GRAM = "patch-gram"

    @property
    def allocates(self) -> bool:
        """Whether the step's result is a new tensor (an einsum of one operand may be a view)."""
        return self not in (StepKind.VIEW, StepKind.BROADCAST, StepKind.EINSUM)


@dataclass(frozen=True)
class Step:
    """One contraction step: pop the operands at ``positions``, push the result.

    Attributes:
        positions: operand positions in the current stack.
        equation: einsum form of the step (exact for every kind); a kernel with a fused
            bias appends ``+ <bias letters>`` (added, broadcast over the other legs).
        kind: ``einsum``, ``native`` (torch convolution kernel), ``view`` (zero-pad and
            strided view), ``gram`` (``Mᵀ M`` of one tensor with itself), ``window-sum`` or
            ``broadcast`` (a variable expanded over the legs of constant fills).
        info: the kind's frozen description (e.g. :class:`~tndiag.codegen.native.NativeConv`).
        label: printable name of the lowering (``conv2d``, ``view:unfold``, ...).
        flops: cost of the step; ``memory``: elements it allocates.
        routes: the correct ways to run the step (:mod:`tndiag.codegen.routes`), empty
            when there is one; ``route``: the one chosen (``""``: the kind's default).
        tune: whether the backend measures the routes on first use and keeps the fastest
            (:mod:`tndiag.codegen.tuning`) instead of running ``route``.
    """

    positions: Tuple[int, ...]
    equation: str
    kind: StepKind = StepKind.EINSUM
    info: Any = None
    label: str = "einsum"
    flops: Size = 0
    memory: Size = 0
    routes: Tuple[str, ...] = ()
    route: str = ""
    tune: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, StepKind):
            object.__setattr__(self, "kind", StepKind(self.kind))

    @property
    def allocates(self) -> bool:
        """Whether the result is a new tensor, never a view of an operand (also a view step
        that torch's unfold computes: its description says so)."""
        return (self.kind.allocates or (self.kind is StepKind.EINSUM and len(self.positions) > 1)
                or bool(getattr(self.info, "allocates", False)))


@dataclass(frozen=True)
class Program:
    """A compiled tensor network: einsum equation, operands, steps, output reshape, cost.

    Call it with torch tensors (``program(X=x, W=w)`` or positionally in :attr:`inputs` order).
    ``flops`` and ``peak_memory`` (elements of intermediates alive at once, materialized
    patterns included) come from :mod:`tndiag.codegen.cost`. ``parts`` are the programs of
    the sum terms this one evaluates together (a fused bias, a broadcast term; see
    :mod:`tndiag.codegen.fuse`), empty otherwise; ``rewrites`` the diagram rewrites that
    fired before lowering (:mod:`tndiag.codegen.rewrite`). ``samples`` are the inputs that
    are int64 vectors of kept positions (sliced patterns, :mod:`tndiag.codegen.lowerings.gather`);
    they follow the variables in :attr:`inputs`.
    """

    equation: str
    operands: Tuple[Operand, ...]
    inputs: Tuple[str, ...]
    input_shapes: Tuple[Tuple[Size, ...], ...]
    path: Tuple[Tuple[int, ...], ...]
    steps: Tuple[Step, ...]
    output_shape: Tuple[Size, ...]
    scale: float
    flops: Size
    largest_intermediate: Size
    peak_memory: Size = 0
    parts: Tuple["Program", ...] = ()
    rewrites: Tuple[str, ...] = ()
    samples: Tuple[str, ...] = ()

    @property
    def is_concrete(self) -> bool:
        """Whether every size is an int (a symbolic plan prints but does not run)."""
        return all(isinstance(s, int) for shape in self.input_shapes for s in shape)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (_RUNNERS.get("torch") or backend())(self, *args, **kwargs)

    def __str__(self) -> str:
        lines = [f"equation: {self.equation}"]
        if self.rewrites:
            lines.insert(0, "rewritten: " + ", ".join(self.rewrites))
        for op in self.operands:
            lines.append(f"  {op.letters or '(scalar)':<10} {op.name:<8} {op.lowering.value:<15} "
                         f"{list(op.shape)}")
        lines.append("inputs: " + ", ".join(f"{n}{list(s)}"
                                            for n, s in zip(self.inputs, self.input_shapes)))
        lines.append(f"path: {list(self.path)}")
        for n, st in enumerate(self.steps):
            lines.append(f"  step {n}: {st.label:<16} {st.equation}  (operands "
                         f"{list(st.positions)}; flops {st.flops}, memory {st.memory})")
            lines.extend(_route_lines(st))
            if getattr(st.info, "scale", 1) != 1:
                lines.append(f"          scale: {st.info.scale} (folded into this step)")
        if self.scale != 1:
            lines.append(f"scale: {self.scale}")
        lines.append(f"output shape: {list(self.output_shape)}")
        lines.append(f"cost: flops = {self.flops}; peak memory = {self.peak_memory} elements; "
                     f"largest intermediate = {self.largest_intermediate} elements")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    """``n`` bytes in GiB (from 1 GiB) or MiB.

    >>> _bytes(3 << 29), _bytes(5 << 20)
    ('1.5 GiB', '5.0 MiB')
    """
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _route_lines(step: Step) -> list:
    """The route of a step with alternatives, and the times measured for it (if any)."""
    if not step.routes:
        return []
    from tndiag.codegen.tuning import measurements

    how = "measured on first run" if step.tune else "chosen"
    lines = [f"          route: {step.route or step.routes[0]} ({how}; routes "
             f"{', '.join(step.routes)})"]
    for m in measurements(step):
        times = ", ".join(f"{r} {t * 1e3:.3f} ms" for r, t in sorted(
            m["times"].items(), key=lambda kv: kv[1]))
        skipped = "".join(f"; {r} not measured ({_bytes(b)} of temporaries)"
                          for r, b in sorted(m.get("skipped", {}).items()))
        lines.append(f"          measured ({m['dtype']}, {m['device']}, {m['threads']} threads, "
                     f"torch {m['torch']}): {times}{skipped}")
    return lines


@dataclass(frozen=True)
class SumProgram:
    """A compiled sum of diagrams: the programs of its terms, added at run time."""

    terms: Tuple[Union[Program, "SlicedProgram"], ...]
    inputs: Tuple[str, ...]
    input_shapes: Tuple[Tuple[Size, ...], ...]

    @property
    def output_shape(self) -> Tuple[Size, ...]:
        """Shape of the result."""
        return self.terms[0].output_shape

    @property
    def flops(self) -> Size:
        """Total FLOPs of all terms."""
        return sum((t.flops for t in self.terms), 0)

    @property
    def peak_memory(self) -> Size:
        """Largest peak of the terms plus the running sum (one output)."""
        from tndiag.codegen.cost import smax

        return smax([t.peak_memory for t in self.terms])

    @property
    def is_concrete(self) -> bool:
        """Whether every term's sizes are ints."""
        return all(t.is_concrete for t in self.terms)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (_RUNNERS.get("torch") or backend())(self, *args, **kwargs)

    def __str__(self) -> str:
        parts = [f"sum of {len(self.terms)} terms"]
        for n, t in enumerate(self.terms):
            parts.append(f"-- term {n} --\n{t}")
        return "\n".join(parts)


@dataclass(frozen=True)
class Chunk:
    """Positions ``start:stop`` of the sliced leg, evaluated by ``program``."""

    start: int
    stop: int
    program: Program


@dataclass(frozen=True)
class ChunkPlan:
    """How a :class:`SlicedProgram` runs for elements of ``itemsize`` bytes.

    Attributes:
        itemsize: bytes per element (1, 2, 4, 8 or 16).
        chunks: the chunks in order; empty when the unsliced program is the better plan.
        peak: modelled peak elements of this plan (chunk peak plus the accumulated result).
    """

    itemsize: int
    chunks: Tuple[Chunk, ...]
    peak: int

    @property
    def peak_bytes(self) -> int:
        """The modelled peak in bytes."""
        return self.peak * self.itemsize


@dataclass(frozen=True)
class SlicedProgram:
    """Memory-bounded evaluation: one program per chunk of one leg, combined.

    Everything is planned at compile time, for every element size torch has.

    Attributes:
        leg: the name of the sliced index; ``size``: its size.
        axes: per input (in :attr:`inputs` order), the runtime axis carrying the leg (or None).
        per: per input, elements of that axis per position of the leg (a fused axis).
        out_axis: output axis carrying the leg, or None when it is summed (chunks are added).
        out_per: elements of the output axis per position of the leg.
        limit: bytes the intermediates may occupy.
        whole: the unsliced program (run when slicing would not lower the peak).
        plans: one :class:`ChunkPlan` per element size.
    """

    leg: str
    size: int
    inputs: Tuple[str, ...]
    input_shapes: Tuple[Tuple[Size, ...], ...]
    axes: Tuple[Optional[int], ...]
    per: Tuple[int, ...]
    out_axis: Optional[int]
    out_per: int
    output_shape: Tuple[Size, ...]
    limit: int
    whole: Program
    plans: Tuple[ChunkPlan, ...]

    is_concrete = True

    def plan_for(self, itemsize: int) -> ChunkPlan:
        """The plan for elements of ``itemsize`` bytes (the next larger size if unlisted)."""
        for p in self.plans:
            if p.itemsize >= itemsize:
                return p
        return self.plans[-1]

    def parts(self, itemsize: int = 4):
        """``[(start, stop, program)]`` for ``itemsize``-byte elements (one part: unsliced)."""
        chunks = self.plan_for(itemsize).chunks
        if not chunks:
            return [(0, self.size, self.whole)]
        return [(c.start, c.stop, c.program) for c in chunks]

    @property
    def peak_memory(self) -> int:
        """Modelled peak elements for float32 elements."""
        return self.plan_for(4).peak

    @property
    def flops(self) -> Size:
        """FLOPs of the float32 plan."""
        chunks = self.plan_for(4).chunks
        return sum((c.program.flops for c in chunks), 0) if chunks else self.whole.flops

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (_RUNNERS.get("torch") or backend())(self, *args, **kwargs)

    def __str__(self) -> str:
        plan = self.plan_for(4)
        if not plan.chunks:
            return (f"memory-bounded ({self.limit} bytes, float32): slicing index {self.leg!r} "
                    f"would not lower the peak; unsliced\n{self.whole}")
        how = ("concatenated on output axis " + str(self.out_axis)
               if self.out_axis is not None else "summed")
        spans = [(c.start, c.stop) for c in plan.chunks]
        head = (f"memory-bounded ({self.limit} bytes, float32; modelled peak "
                f"{plan.peak_bytes} bytes): index {self.leg!r} in {len(spans)} chunks {spans}, "
                f"{how}")
        return head + "\n-- chunk program --\n" + str(plan.chunks[0].program)


AnyProgram = Union[Program, SumProgram, SlicedProgram]


def sample_inputs(program: AnyProgram) -> Tuple[str, ...]:
    """The inputs of ``program`` that are position vectors (see :attr:`Program.samples`)."""
    if isinstance(program, Program):
        return program.samples
    parts = program.terms if isinstance(program, SumProgram) else (program.whole,)
    return tuple(dict.fromkeys(name for part in parts for name in sample_inputs(part)))
