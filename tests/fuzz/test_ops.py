"""Fuzz the builders ``tndiag.ops.*``: every call returns a diagram or follows the rule.

Shapes are optional for most builders (symbols by default), so the valid calls mix
concrete and symbolic ones; see ``strategies.py`` for the replaced values.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tndiag
from fuzz.strategies import FUZZ, Arg, Template, calls, check_rule, describe
from tndiag import ops

HYPER = {"stride": Arg("int", 1), "padding": Arg("pad", 0), "dilation": Arg("int", 1)}
CONV = {"input_shape": Arg("shape", (2, 4, 6)), "weight_shape": Arg("shape", (4, 2, 3)),
        "ndim": Arg("ndim", None), **HYPER, "groups": Arg("int", 2)}
CONV_T = {"input_shape": Arg("shape", (2, 4, 5)), "weight_shape": Arg("shape", (4, 3, 3)),
          "ndim": Arg("ndim", None), "stride": Arg("int", 2), "padding": Arg("pad", 0),
          "output_padding": Arg("pad", 1), "groups": Arg("int", 1), "dilation": Arg("int", 1)}
DERIVED = {"input_shape": Arg("shape", (2, 3, 6)), "weight_shape": Arg("shape", (4, 3, 3)),
           "transposed": Arg("flag", False), **HYPER}
FACTOR = {"input_shape": Arg("shape", (2, 4, 5)), "kernel_size": Arg("size", 2), **HYPER,
          "groups": Arg("int", 2), "transposed": Arg("flag", False),
          "output_padding": Arg("pad", 0)}
GGN = {"input_shape": Arg("shape", (2, 3, 6)), "factor_shape": Arg("shape", (2, 2, 4, 4)),
       "kernel_size": Arg("size", 3), **HYPER, "groups": Arg("int", 1)}

TEMPLATES = [
    Template("conv", ops.conv, {**CONV, "bias": Arg("flag", True)}),
    Template("conv_transpose", ops.conv_transpose, {**CONV_T, "bias": Arg("flag", False)}),
    Template("unfold", ops.unfold, {"input_shape": Arg("shape", (2, 3, 5, 5)),
                                    "kernel_size": Arg("size", 2), **HYPER,
                                    "ndim": Arg("ndim", None)}),
    Template("fold", ops.fold, {"input_shape": Arg("shape", (2, 12, 16)),
                                "output_size": Arg("size", (5, 5)),
                                "kernel_size": Arg("size", 2), **HYPER}),
    Template("unfold_kernel", ops.unfold_kernel,
             {"weight_shape": Arg("shape", (4, 1, 3)), "input_size": Arg("size", (6,)),
              **HYPER, "groups": Arg("int", 2), "ndim": Arg("ndim", None)}),
    Template("conv_input_vjp", ops.conv_input_vjp, DERIVED),
    Template("conv_weight_vjp", ops.conv_weight_vjp, DERIVED),
    Template("conv_input_jvp", ops.conv_input_jvp, DERIVED),
    Template("conv_weight_jvp", ops.conv_weight_jvp, DERIVED),
    Template("conv_jacobian", ops.conv_jacobian, {**DERIVED, "wrt": Arg("any", "X|W")}),
    Template("kfc", ops.kfc, FACTOR),
    Template("kfac_reduce", ops.kfac_reduce, {**FACTOR, "transposed": Arg("flag", True),
                                              "output_padding": Arg("pad", 1),
                                              "groups": Arg("int", 1),
                                              "stride": Arg("int", 2)}),
    Template("per_sample_weight_vjp", ops.per_sample_weight_vjp, GGN),
    Template("weight_ggn", ops.weight_ggn, GGN),
    Template("weight_ggn_diag", ops.weight_ggn_diag, GGN),
    Template("weight_ggn_gram", ops.weight_ggn_gram, GGN),
    Template("grad_output_kfac", ops.grad_output_kfac,
             {"grad_output_shape": Arg("shape", (2, 3, 4)), "reduce": Arg("flag", False),
              "scale": Arg("scale", 1.0)}),
]


def test_every_builder_has_a_template():
    public = {name for name in dir(ops) if not name.startswith("_")
              and callable(getattr(ops, name)) and name not in ("conv_spec",)}
    assert public - {"common", "hyper", "curvature", "derived"} == {t.name for t in TEMPLATES}


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
@FUZZ
@given(data=st.data())
def test_builders_follow_the_error_rule(template, data):
    kwargs, _ = data.draw(calls(template), label="call")
    what = f"ops.{template.name}({describe(kwargs)})"
    result = check_rule(lambda: template.fn(**kwargs), what)
    assert result is None or isinstance(result, (tndiag.Graph, tndiag.Sum)), what
