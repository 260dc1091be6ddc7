"""The contraction path: letters only one operand carries are summed first, so a mirrored
half priced alone is not dearer than the whole network (transposed KFAC-reduce)."""

import torch
from diagram_checks import assert_close
from random_diagrams import dense_value

import tndiag
from tndiag import ops
from tndiag.codegen.lowerings.contraction import path_cost
from tndiag.codegen.program import LoweringKind, StepKind


def test_a_letter_of_one_operand_is_summed_before_the_pairwise_products():
    sizes = dict(a=8, b=1, c=64, d=28, e=28, f=56, g=3, h=56, i=3)
    path, flops = path_cost(["abcde", "fdg", "hei"], "abcgi", sizes)
    assert path[:2] == [(1,), (1,)]  # Σ_i Π of each pattern first
    assert flops < 3_000_000  # pairwise first: 51 MFLOP


def test_transposed_kfac_reduce_contracts_one_half():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    diagram = ops.kfac_reduce(tuple(x.shape), 3, stride=2, padding=1, transposed=True,
                              output_padding=1)
    program = tndiag.compile(diagram)
    assert program.steps[-1].kind is StepKind.GRAM
    assert [op.lowering for op in program.operands].count(LoweringKind.MIRROR) == 3
    assert_close(program(X=x), dense_value(diagram, {"X": x}), "transposed KFAC-reduce")
