"""Builders: each returns the diagram (a :class:`~tndiag.ir.Graph` or ``Sum``) of one operation."""

from tndiag.ops.conv import conv, conv_transpose
from tndiag.ops.curvature import (
                                grad_output_kfac,
                                kfac_reduce,
                                kfc,
                                per_sample_weight_vjp,
                                weight_ggn,
                                weight_ggn_diag,
                                weight_ggn_gram,
)
from tndiag.ops.derived import (
                                conv_input_jvp,
                                conv_input_vjp,
                                conv_jacobian,
                                conv_weight_jvp,
                                conv_weight_vjp,
)
from tndiag.ops.unfold import fold, unfold, unfold_kernel

__all__ = ["conv", "conv_transpose", "fold", "unfold", "unfold_kernel"]
__all__ += ["conv_input_jvp", "conv_input_vjp", "conv_jacobian", "conv_weight_jvp",
            "conv_weight_vjp", "grad_output_kfac", "kfac_reduce", "kfc", "per_sample_weight_vjp",
            "weight_ggn", "weight_ggn_diag", "weight_ggn_gram"]
