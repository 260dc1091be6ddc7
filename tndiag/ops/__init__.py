"""Builders: each returns the diagram (a :class:`~tndiag.ir.Graph` or ``Sum``) of one operation."""

from tndiag.ops.conv import conv, conv_transpose
from tndiag.ops.unfold import fold, unfold, unfold_kernel

__all__ = ["conv", "conv_transpose", "fold", "unfold", "unfold_kernel"]
