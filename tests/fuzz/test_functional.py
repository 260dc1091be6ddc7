"""Fuzz ``tndiag.functional`` and the ``tndiag.nn`` modules: every call follows the rule.

Each example replaces one or two arguments of a valid call by a value of the same kind
(mostly invalid: huge, negative, float, bool, None, strings, tensors as flags, wrong
shapes, dtypes, devices); see ``strategies.py``. A successful call must return a tensor.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fuzz.strategies import FUZZ, Arg, Template, calls, check_rule, describe
from tndiag import functional as F
from tndiag import nn


def T(*shape):
    return Arg("tensor", lambda: torch.ones(shape))


HYPER = {"stride": Arg("int", 1), "padding": Arg("pad", 0), "dilation": Arg("int", 1)}
TEMPLATES = [
    Template("conv", F.conv, {"input": T(2, 4, 5, 5), "weight": T(6, 2, 3, 3),
                              "bias": T(6), **HYPER, "groups": Arg("int", 2)}),
    Template("conv_transpose", F.conv_transpose,
             {"input": T(2, 4, 5), "weight": T(4, 3, 3), "bias": T(6), "stride": Arg("int", 2),
              "padding": Arg("pad", 1), "output_padding": Arg("pad", 1),
              "groups": Arg("int", 2), "dilation": Arg("int", 1)}),
    Template("unfold", F.unfold, {"input": T(2, 3, 5, 5), "kernel_size": Arg("size", 2),
                                  **HYPER}),
    Template("fold", F.fold, {"input": T(2, 12, 16), "output_size": Arg("size", 5),
                              "kernel_size": Arg("size", 2), **HYPER}),
    Template("unfold_kernel", F.unfold_kernel,
             {"weight": T(4, 1, 3), "input_size": Arg("size", 6), **HYPER,
              "groups": Arg("int", 2)}),
    Template("conv_input_vjp", F.conv_input_vjp,
             {"input_size": Arg("shape", (2, 3, 7)), "weight": T(4, 3, 3),
              "grad_output": T(2, 4, 3), "stride": Arg("int", 2), "padding": Arg("pad", 0),
              "dilation": Arg("int", 1), "groups": Arg("int", 1)}),
    Template("conv_weight_vjp", F.conv_weight_vjp,
             {"input": T(2, 3, 7), "weight_size": Arg("shape", (4, 3, 3)),
              "grad_output": T(2, 4, 5), **HYPER, "groups": Arg("int", 1)}),
    Template("kfc", F.kfc, {"input": T(2, 4, 5), "kernel_size": Arg("size", 2), **HYPER,
                            "groups": Arg("int", 2), "transposed": Arg("flag", False),
                            "output_padding": Arg("pad", 0)}),
    Template("kfac_reduce", F.kfac_reduce,
             {"input": T(2, 2, 5), "kernel_size": Arg("size", 2), "stride": Arg("int", 2),
              "padding": Arg("pad", 0), "dilation": Arg("int", 1), "groups": Arg("int", 1),
              "transposed": Arg("flag", True), "output_padding": Arg("pad", 1)}),
    Template("weight_ggn_diag", F.weight_ggn_diag,
             {"input": T(2, 3, 6), "grad_output_factor": T(2, 2, 4, 4),
              "kernel_size": Arg("size", 3), **HYPER, "groups": Arg("int", 1)}),
    Template("weight_ggn_gram", F.weight_ggn_gram,
             {"input": T(2, 2, 6), "grad_output_factor": T(1, 2, 4, 4),
              "kernel_size": Arg("size", 3), **HYPER, "groups": Arg("int", 2)}),
]


def test_every_public_function_has_a_template():
    assert {t.name for t in TEMPLATES} == set(F.__all__)


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
@FUZZ
@given(data=st.data())
def test_functional_follows_the_error_rule(template, data):
    kwargs, non_tensor = data.draw(calls(template), label="call")
    what = f"{template.name}({describe(kwargs)})"
    result = check_rule(lambda: template.fn(**kwargs), what, non_tensor)
    assert result is None or isinstance(result, torch.Tensor), what


def _conv_module_args(transposed: bool):
    args = {"in_channels": Arg("int", 4), "out_channels": Arg("int", 2),
            "kernel_size": Arg("size", 3), "stride": Arg("int", 1), "padding": Arg("pad", 1),
            "dilation": Arg("int", 1), "groups": Arg("int", 2), "bias": Arg("flag", True),
            "padding_mode": Arg("any", "zeros"), "dtype": Arg("any", None)}
    if transposed:
        args["output_padding"] = Arg("pad", 0)
    return args


MODULES = [Template(f"Conv{d}d", getattr(nn, f"Conv{d}d"), _conv_module_args(False))
           for d in (1, 2, 3)]
MODULES += [Template(f"ConvTranspose{d}d", getattr(nn, f"ConvTranspose{d}d"),
                     _conv_module_args(True)) for d in (1, 2, 3)]
MODULES += [
    Template("Unfold", nn.Unfold, {"kernel_size": Arg("size", 2), "dilation": Arg("int", 1),
                                   "padding": Arg("pad", 0), "stride": Arg("int", 1)}),
    Template("Fold", nn.Fold, {"output_size": Arg("size", 4), "kernel_size": Arg("size", 2),
                               "dilation": Arg("int", 1), "padding": Arg("pad", 0),
                               "stride": Arg("int", 1)}),
]
OUTPUT_SIZES = [None, [100], "ab", [3.5], [-1], [2**63], (4, 4, 4), torch.Size([4]), [None]]
INPUTS = {"Conv1d": (2, 4, 5), "Conv2d": (1, 4, 4, 4), "Conv3d": (1, 4, 3, 3, 3),
          "ConvTranspose1d": (2, 4, 5), "ConvTranspose2d": (1, 4, 3, 3),
          "ConvTranspose3d": (1, 4, 2, 2, 2), "Unfold": (1, 2, 4, 4), "Fold": (1, 8, 9)}


@pytest.mark.parametrize("template", MODULES, ids=[t.name for t in MODULES])
@FUZZ
@given(data=st.data())
def test_nn_modules_follow_the_error_rule(template, data):
    kwargs, _ = data.draw(calls(template), label="call")
    what = f"{template.name}({describe(kwargs)})"
    module = check_rule(lambda: template.fn(**kwargs), what)
    if module is not None:
        x = torch.ones(INPUTS[template.name], dtype=module.weight.dtype
                       if hasattr(module, "weight") else torch.float64)
        extra = {}
        if template.name.startswith("ConvTranspose"):
            extra["output_size"] = data.draw(st.sampled_from(OUTPUT_SIZES), label="output_size")
        result = check_rule(lambda: module(x, **extra), f"{what} forward({extra})")
        assert result is None or isinstance(result, torch.Tensor), what
