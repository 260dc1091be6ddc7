"""The simplification rules of docs/method.md §4, one module each; importing registers them.

Each module adds its rule(s) to :data:`tndiag.passes.simplify.RULES` and registers a pass
of the same name; ``simplify`` runs them all to a fixpoint.
"""

from tndiag.passes.rules.delta import DELTA_DUPLICATE, DELTA_RENAME, DELTA_TRACE, delta_pruning
from tndiag.passes.rules.dense import DENSE, dense
from tndiag.passes.rules.downsample import DOWN_SAMPLING, down_sampling, mixed_dense
from tndiag.passes.rules.merge import MERGE, merge_parallel_legs
from tndiag.passes.rules.squeeze import SQUEEZE, squeeze
from tndiag.passes.rules.sum_out import SUM_OUT, sum_out

__all__ = ["DELTA_DUPLICATE", "DELTA_RENAME", "DELTA_TRACE", "DENSE", "DOWN_SAMPLING", "MERGE",
           "SQUEEZE", "SUM_OUT", "delta_pruning", "dense", "down_sampling", "merge_parallel_legs",
           "mixed_dense", "squeeze", "sum_out"]
