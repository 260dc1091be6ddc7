"""Codegen: diagrams to frozen einsum programs (lowering per node kind, contraction paths)."""

from tndiag.codegen.bounded import MemoryLimitWarning
from tndiag.codegen.compile import cache_info, clear_cache, compile, plan
from tndiag.codegen.program import Operand, Program, SlicedProgram, Step, SumProgram

__all__ = ["cache_info", "clear_cache", "compile", "plan", "Operand", "Program", "Step",
           "SumProgram", "SlicedProgram", "MemoryLimitWarning"]
