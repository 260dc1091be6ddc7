"""The diagram IR: immutable graphs of tensors with named (hyper)edges and symbolic sizes."""

from tndiag.ir.graph import Diagram, Graph, Sum
from tndiag.ir.nodes import (
    KIND_TABLE,
    Axis,
    Index,
    Kind,
    PatternParams,
    Role,
    Tensor,
    constant,
    delta,
    pattern,
    reduced_pattern,
    sliced_pattern,
    variable,
)
from tndiag.ir.sizes import Size, as_size, pattern_output_size
from tndiag.ir.verify import verify

__all__ = [
    "Axis", "Diagram", "Graph", "Index", "KIND_TABLE", "Kind", "PatternParams", "Role", "Size",
    "Sum", "Tensor", "as_size", "constant", "delta", "pattern", "pattern_output_size",
    "reduced_pattern", "sliced_pattern", "variable", "verify",
]
