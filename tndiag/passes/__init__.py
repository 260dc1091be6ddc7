"""Pure ``Graph -> Graph`` transformations, one module each, registered by kebab-case name.

Importing this package registers every pass in :data:`~tndiag.passes.base.PASSES`.
"""

from tndiag.passes import canonicalize, differentiate, expand, rules, simplify, subsample  # noqa: F401  (register the simplification passes)  # noqa: F401  (register)
from tndiag.passes.base import (
                                PASSES,
                                Pass,
                                PipelineResult,
                                Trace,
                                parse_pipeline,
                                register,
                                run_pipeline,
)

__all__ = ["PASSES", "Pass", "PipelineResult", "Trace", "parse_pipeline", "register",
           "run_pipeline"]
