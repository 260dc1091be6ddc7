"""The frozen, printable result of compilation: no tensors inside, only the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple, Union

from tndiag.ir import Tensor

__all__ = ["Operand", "Step", "Program", "SumProgram", "AnyProgram"]


@dataclass(frozen=True)
class Operand:
    """One operand of the contraction and how the backend obtains it.

    Attributes:
        tensor: the IR tensor it stands for.
        letters: einsum subscripts of its flat legs (repeats allowed: a diagonal).
        shape: flat runtime shape, one int per letter.
        lowering: name of the lowering (see :mod:`tndiag.codegen.lowering`).
    """

    tensor: Tensor
    letters: str
    shape: Tuple[int, ...]
    lowering: str

    @property
    def name(self) -> str:
        """The IR tensor's name."""
        return self.tensor.name


@dataclass(frozen=True)
class Step:
    """One contraction step: pop the operands at ``positions``, push the result."""

    positions: Tuple[int, ...]
    equation: str


@dataclass(frozen=True)
class Program:
    """A compiled tensor network: einsum equation, operands, path, steps and output reshape.

    Call it with torch tensors (``program(X=x, W=w)`` or positionally in :attr:`inputs` order).
    """

    equation: str
    operands: Tuple[Operand, ...]
    inputs: Tuple[str, ...]
    input_shapes: Tuple[Tuple[int, ...], ...]
    path: Tuple[Tuple[int, ...], ...]
    steps: Tuple[Step, ...]
    output_shape: Tuple[int, ...]
    scale: float
    flops: int
    largest_intermediate: int
    cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from tndiag.backends.torch import run

        return run(self, *args, **kwargs)

    def __str__(self) -> str:
        lines = [f"equation: {self.equation}"]
        for op in self.operands:
            lines.append(f"  {op.letters or '(scalar)':<10} {op.name:<8} {op.lowering:<14} "
                         f"{list(op.shape)}")
        lines.append(f"inputs: {', '.join(f'{n}{list(s)}' for n, s in zip(self.inputs, self.input_shapes))}")
        lines.append(f"path: {list(self.path)}")
        for n, st in enumerate(self.steps):
            lines.append(f"  step {n}: {st.equation}  (operands {list(st.positions)})")
        if self.scale != 1:
            lines.append(f"scale: {self.scale}")
        lines.append(f"output shape: {list(self.output_shape)}")
        lines.append(f"cost: {self.flops:.4g} FLOPs, largest intermediate "
                     f"{self.largest_intermediate:.4g} elements")
        return "\n".join(lines)


@dataclass(frozen=True)
class SumProgram:
    """A compiled sum of diagrams: the programs of its terms, added at run time."""

    terms: Tuple[Program, ...]
    inputs: Tuple[str, ...]
    input_shapes: Tuple[Tuple[int, ...], ...]

    @property
    def output_shape(self) -> Tuple[int, ...]:
        """Shape of the result."""
        return self.terms[0].output_shape

    @property
    def flops(self) -> int:
        """Total FLOPs of all terms."""
        return sum(t.flops for t in self.terms)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from tndiag.backends.torch import run

        return run(self, *args, **kwargs)

    def __str__(self) -> str:
        parts = [f"sum of {len(self.terms)} terms"]
        for n, t in enumerate(self.terms):
            parts.append(f"-- term {n} --\n{t}")
        return "\n".join(parts)


AnyProgram = Union[Program, SumProgram]
