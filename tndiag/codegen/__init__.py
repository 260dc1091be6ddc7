"""Codegen: diagrams to frozen einsum programs (lowering per node kind, contraction paths)."""

from tndiag.codegen.compile import compile
from tndiag.codegen.program import Operand, Program, Step, SumProgram

__all__ = ["compile", "Operand", "Program", "Step", "SumProgram"]
