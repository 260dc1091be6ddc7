"""The simplification rules of PAPER.md §4, one module each; importing registers them.

Each module adds its rule(s) to :data:`tndiag.passes.simplify.RULES` and registers a pass
of the same name; ``simplify`` runs them all to a fixpoint.
"""

from tndiag.passes.rules.sum_out import SUM_OUT, sum_out

__all__ = ["SUM_OUT", "sum_out"]
