"""Torch-facing functions with torch's argument names, defaults and shapes, evaluated as diagrams.

Each function builds the diagram of its operation (cached per shapes and hyper-parameters),
compiles it once, and runs the program on the given tensors.
"""

from tndiag.functional.conv import conv, conv_transpose
from tndiag.functional.curvature import (
                                        conv_input_vjp,
                                        conv_weight_vjp,
                                        kfac_reduce,
                                        kfc,
                                        weight_ggn_diag,
                                        weight_ggn_gram,
)
from tndiag.functional.unfold import fold, unfold, unfold_kernel

__all__ = ["conv", "conv_transpose", "fold", "unfold", "unfold_kernel"]
__all__ += ["conv_input_vjp", "conv_weight_vjp", "kfac_reduce", "kfc", "weight_ggn_diag",
            "weight_ggn_gram"]
