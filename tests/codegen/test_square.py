"""The ``square`` rule: two mirrored halves that keep no leg apart are one half, squared and
summed.

Oracles: random networks doubled into ``Σ H ⊙ H`` against the dense evaluator of
``random_diagrams``; the GGN diagonal against per-sample weight gradients from autograd
(float64, grid of convolutions incl. stride, padding, dilation, groups, N = 1, 2, 3,
transposed); the plan has one weight-gradient kernel, not two.
"""

import pytest
import torch
from diagram_checks import assert_close, inputs_for
from hypothesis import assume, given
from hypothesis import strategies as st
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, networks

import tndiag
from tndiag import ops
from tndiag.codegen.lowerings.square import square_spec
from tndiag.codegen.program import LoweringKind, StepKind
from tndiag.ir import Graph, Index, Kind


def doubled(graph: Graph, keep=None) -> Graph:
    """``Σ H ⊙ H``: ``graph`` ``H`` and a copy whose summed legs and non-variable tensors are
    renamed, joined on ``H``'s open legs; the result keeps the axes ``keep`` of them (all by
    default) and sums the others."""
    open_legs = {ix.name for ix in graph.output_indices}
    legs = {ix.name: Index(ix.name + "_m", ix.size) for t in graph.tensors
            for ix in t.indices if ix.name not in open_legs}

    def copy(t):
        axes = tuple(tuple(legs.get(ix.name, ix) for ix in axis) for axis in t.axes)
        name = t.name if t.kind is Kind.VARIABLE else t.name + "_m"
        return t.replace(name=name, axes=axes)
    return Graph(graph.tensors + tuple(copy(t) for t in graph.tensors),
                 graph.output if keep is None else tuple(keep))


def test_square_spec_orders_what_is_left():
    assert square_spec("aijb", "bj") == square_spec("aijb", "jb").__class__((0, 1), (1, 0))
    assert square_spec("aab", "b") is None


@oracle_settings()
@given(networks(), st.data())
def test_doubled_random_networks_match_the_dense_evaluator(graph, data):
    assume(any(t.kind is Kind.VARIABLE for t in graph.tensors))
    keep = data.draw(st.lists(st.sampled_from(graph.output), unique=True)) if graph.output \
        else []
    diagram = doubled(graph, keep)
    program = tndiag.compile(diagram)
    inputs = inputs_for(diagram)
    got = program(**{n: inputs[n] for n in program.inputs})
    assert_matches_oracle(got, dense_value(diagram, inputs), "Σ H ⊙ H")


def test_doubled_network_contracts_one_half():
    """A dot product of a conv with itself: one conv kernel, then the square step."""
    graph = ops.conv((2, 3, 9), (4, 3, 3))
    n, d, o = graph.output_indices
    program = tndiag.compile(doubled(graph, [(d,)]))
    assert [s.kind for s in program.steps] == [StepKind.NATIVE, StepKind.SQUARE]
    assert [op.lowering for op in program.operands].count(LoweringKind.MIRROR) == 3
    x, w = torch.randn(2, 3, 9, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
    want = torch.nn.functional.conv1d(x, w).square().sum((0, 2))
    assert_close(program(X=x, W=w), want, "Σ conv²")


GGN_CASES = {
    "1d": dict(x=(3, 2, 9), w=(4, 2, 3), stride=2, padding=1, dilation=1, groups=1),
    "2d-dilated": dict(x=(2, 2, 7, 6), w=(3, 2, 2, 3), stride=1, padding=(1, 0),
                       dilation=(2, 1), groups=1),
    "2d-grouped": dict(x=(2, 4, 6, 6), w=(6, 2, 3, 3), stride=(2, 1), padding=1, dilation=1,
                       groups=2),
    "2d-same": dict(x=(1, 2, 5, 6), w=(2, 2, 3, 2), stride=1, padding="same", dilation=1,
                    groups=1),
    "3d": dict(x=(2, 1, 4, 5, 3), w=(2, 1, 2, 3, 2), stride=1, padding=(0, 1, 0),
               dilation=1, groups=1),
}


def per_sample_grads(x, w, s, case, transposed=False):
    """``[Z, N, *W]`` weight gradients of ``<S[z, n], conv(x[n])>`` by autograd."""
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[x.dim() - 2]
    if transposed:
        fn = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
              3: torch.nn.functional.conv_transpose3d}[x.dim() - 2]
    rows = []
    for z in range(s.shape[0]):
        row = []
        for n in range(x.shape[0]):
            wr = w.clone().requires_grad_(True)
            kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
            y = fn(x[n:n + 1], wr, **kw)
            (g,) = torch.autograd.grad((y * s[z, n:n + 1]).sum(), wr)
            row.append(g)
        rows.append(torch.stack(row))
    return torch.stack(rows)


@pytest.mark.parametrize("name", list(GGN_CASES))
def test_ggn_diagonal_runs_one_weight_kernel_and_matches_autograd(name):
    case = GGN_CASES[name]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(case["x"], generator=gen, dtype=torch.float64)
    w = torch.randn(case["w"], generator=gen, dtype=torch.float64)
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    out = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
           3: torch.nn.functional.conv3d}[x.dim() - 2](x, w, **kw).shape
    s = torch.randn((2, *out), generator=gen, dtype=torch.float64)
    program = tndiag.compile(ops.weight_ggn_diag(tuple(x.shape), tuple(s.shape), w.shape[2:],
                                                 **kw))
    kinds = [step.kind for step in program.steps]
    assert kinds.count(StepKind.SQUARE) == 1 and kinds.count(StepKind.NATIVE) == 1, kinds
    got = tndiag.functional.weight_ggn_diag(x, s, w.shape[2:], **kw)
    assert_close(got, per_sample_grads(x, w, s, case).square().sum((0, 1)), name)


def test_transposed_ggn_diagonal_matches_autograd():
    case = dict(stride=2, padding=1, dilation=1, groups=1)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)
    out = torch.nn.functional.conv_transpose2d(x, w, stride=2, padding=1).shape
    s = torch.randn((3, *out), generator=gen, dtype=torch.float64)
    diagram = ops.weight_ggn_diag(tuple(x.shape), tuple(s.shape), 3, stride=2, padding=1,
                                  transposed=True)
    program = tndiag.compile(diagram)
    assert [step.kind for step in program.steps].count(StepKind.SQUARE) == 1
    got = program(X=x, S=s)
    assert_close(got.reshape(w.shape), per_sample_grads(x, w, s, case, True).square()
                 .sum((0, 1)), "transposed GGN diagonal")


def test_square_step_exports_and_keeps_gradients():
    diagram = ops.weight_ggn_diag((2, 3, 8), (2, 2, 4, 6), 3)
    program = tndiag.compile(diagram)
    namespace: dict = {}
    exec(tndiag.export(program, name="ggn_diag"), namespace)
    x = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 2, 4, 6, dtype=torch.float64)
    assert_close(namespace["ggn_diag"](X=x, S=s), program(X=x, S=s), "exported")
    (g,) = torch.autograd.grad(program(X=x, S=s).sum(), x)
    dense = tndiag.compile(diagram, lowerings=())
    (want,) = torch.autograd.grad(dense(X=x, S=s).sum(), x)
    assert_close(g, want, "gradient through the square step")
