"""The frozen, printable result of compilation: no tensors inside, only the plan.

A :class:`Program` lists its operands (each with the lowering of its node kind), then the
steps that contract them. A step is an ``einsum`` or a structured lowering (a native
convolution kernel, a strided view, a Gram product; see :mod:`tndiag.codegen.lowering`);
its printout names the lowering and its cost. Costs are ints for concrete diagrams and
sympy formulas for symbolic ones (:func:`tndiag.codegen.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple, Union

from tndiag.errors import CompileError
from tndiag.ir import Tensor
from tndiag.ir.sizes import Size

__all__ = ["Operand", "Step", "Program", "SumProgram", "SlicedProgram", "AnyProgram"]


@dataclass(frozen=True)
class Operand:
    """One operand of the contraction and how the backend obtains it.

    Attributes:
        tensor: the IR tensor it stands for.
        letters: einsum subscripts of its flat legs (repeats allowed: a diagonal).
        shape: flat runtime shape, one size per letter.
        lowering: name of the lowering (see :mod:`tndiag.codegen.lowering`); operands
            consumed by a structured step (``native``, ``view``) are never materialized.
    """

    tensor: Tensor
    letters: str
    shape: Tuple[Size, ...]
    lowering: str

    @property
    def name(self) -> str:
        """The IR tensor's name."""
        return self.tensor.name


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
    """

    positions: Tuple[int, ...]
    equation: str
    kind: str = "einsum"
    info: Any = None
    label: str = "einsum"
    flops: Size = 0
    memory: Size = 0


@dataclass(frozen=True)
class Program:
    """A compiled tensor network: einsum equation, operands, steps, output reshape, cost.

    Call it with torch tensors (``program(X=x, W=w)`` or positionally in :attr:`inputs` order).
    ``flops`` and ``peak_memory`` (elements of intermediates alive at once, materialized
    patterns included) come from :mod:`tndiag.codegen.cost`. ``parts`` are the programs of
    the sum terms this one evaluates together (a fused bias, a broadcast term; see
    :mod:`tndiag.codegen.fuse`), empty otherwise.
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
    cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def is_concrete(self) -> bool:
        """Whether every size is an int (a symbolic plan prints but does not run)."""
        return all(isinstance(s, int) for shape in self.input_shapes for s in shape)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        concrete = self.cache.get("concrete")
        if concrete is None:
            concrete = self.cache["concrete"] = self.is_concrete
        if not concrete:
            raise CompileError("this plan has symbolic sizes; compile(diagram, sizes={...}) "
                               "with a value for each to run it")
        from tndiag.backends.torch import run

        return run(self, *args, **kwargs)

    def __str__(self) -> str:
        lines = [f"equation: {self.equation}"]
        for op in self.operands:
            lines.append(f"  {op.letters or '(scalar)':<10} {op.name:<8} {op.lowering:<15} "
                         f"{list(op.shape)}")
        lines.append("inputs: " + ", ".join(f"{n}{list(s)}"
                                            for n, s in zip(self.inputs, self.input_shapes)))
        lines.append(f"path: {list(self.path)}")
        for n, st in enumerate(self.steps):
            lines.append(f"  step {n}: {st.label:<16} {st.equation}  (operands "
                         f"{list(st.positions)}; flops {st.flops}, memory {st.memory})")
        if self.scale != 1:
            lines.append(f"scale: {self.scale}")
        lines.append(f"output shape: {list(self.output_shape)}")
        lines.append(f"cost: flops = {self.flops}; peak memory = {self.peak_memory} elements; "
                     f"largest intermediate = {self.largest_intermediate} elements")
        return "\n".join(lines)


@dataclass(frozen=True)
class SumProgram:
    """A compiled sum of diagrams: the programs of its terms, added at run time."""

    terms: Tuple[Program, ...]
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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from tndiag.backends.torch import run

        return run(self, *args, **kwargs)

    def __str__(self) -> str:
        parts = [f"sum of {len(self.terms)} terms"]
        for n, t in enumerate(self.terms):
            parts.append(f"-- term {n} --\n{t}")
        return "\n".join(parts)


@dataclass(frozen=True)
class SlicedProgram:
    """Memory-bounded evaluation: run one program per chunk of one leg and combine.

    Attributes:
        graph: the full diagram; ``leg``: the name of the sliced index.
        axes: per input (in :attr:`inputs` order), the runtime axis that carries the leg.
        out_axis: output axis carrying the leg, or None when it is summed (chunks are added).
        limit: bytes the intermediates of one chunk may occupy.
        allowed: the structured lowerings used for each chunk's program.
    """

    graph: Any
    leg: str
    inputs: Tuple[str, ...]
    input_shapes: Tuple[Tuple[Size, ...], ...]
    axes: Tuple[int, ...]
    out_axis: Union[int, None]
    output_shape: Tuple[Size, ...]
    limit: int
    allowed: Tuple[str, ...]
    cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def parts(self, itemsize: int = 4):
        """``[(start, stop, program)]``: chunks of the leg whose peak fits the limit."""
        from tndiag.codegen.bounded import chunk_plan

        if itemsize not in self.cache:
            self.cache[itemsize] = chunk_plan(self, itemsize)
        return self.cache[itemsize]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from tndiag.backends.torch import run

        return run(self, *args, **kwargs)

    def __str__(self) -> str:
        parts = self.parts(4)
        how = ("concatenated on output axis " + str(self.out_axis)
               if self.out_axis is not None else "summed")
        head = (f"memory-bounded ({self.limit} bytes, float32): index {self.leg!r} in "
                f"{len(parts)} chunks {[(a, b) for a, b, _ in parts]}, {how}")
        return head + "\n-- chunk program --\n" + str(parts[0][2])


AnyProgram = Union[Program, SumProgram, SlicedProgram]
