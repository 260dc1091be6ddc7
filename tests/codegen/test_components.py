"""A disconnected product: components found by networkx, contracted independently, joined last.

Oracles: the components against a transitive closure written from the definition, the
compiled value against the dense evaluator of ``random_diagrams`` (random diagrams with
independent parts), and the plan of a fixed disconnected product against a golden printout.
"""

from pathlib import Path

import torch
from diagram_checks import inputs_for
from hypothesis import assume, given
from hypothesis import strategies as st
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, diagrams

import tndiag
from tndiag import ops
from tndiag.codegen.components import components
from tndiag.codegen.program import LoweringKind, SlicedProgram, SumProgram
from tndiag.ir import Graph, Index, Sum, variable

GOLDEN = Path(__file__).parent / "golden"


def closure(letters):
    """Components by repeated merging of operand sets that share a letter (the definition)."""
    groups = [({n}, set(subs)) for n, subs in enumerate(letters)]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if groups[a][1] & groups[b][1]:
                    groups[a] = (groups[a][0] | groups[b][0], groups[a][1] | groups[b][1])
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return sorted((tuple(sorted(ops_)) for ops_, _ in groups), key=lambda part: part[0])


@given(st.lists(st.text("abcdefg", max_size=3), max_size=8))
def test_components_are_the_transitive_closure_of_shared_letters(letters):
    assert components(letters) == closure(letters)


def _disconnected(graph: Graph) -> bool:
    names = {ix.name: chr(0x100 + n) for n, ix in enumerate(
        dict.fromkeys(ix for t in graph.tensors for ix in t.indices))}
    return len(components(["".join(names[ix.name] for ix in t.indices)
                           for t in graph.tensors])) > 1


def _plain(program):
    terms = program.terms if isinstance(program, SumProgram) else (program,)
    return [t.whole if isinstance(t, SlicedProgram) else t for t in terms]


def assert_components_joined_last(program):
    """Each component is contracted to one tensor before a step joins it with another."""
    parts = components([op.letters for op in program.operands])
    owner = {n: c for c, part in enumerate(parts) for n in part}
    stack = [{owner[n]} for n in range(len(program.operands))]
    mirror = [op.lowering is LoweringKind.MIRROR for op in program.operands]
    for step in program.steps:
        taken = [stack[p] for p in step.positions]
        joined = set().union(*taken)
        if len({frozenset(t) for t in taken}) > 1 and any(not a & b for a in taken
                                                          for b in taken if a is not b):
            rest = [s for p, s in enumerate(stack) if p not in step.positions
                    and not (p < len(mirror) and mirror[p])]
            assert not any(s & joined for s in rest), (step.equation, str(program))
        for p in sorted(step.positions, reverse=True):
            stack.pop(p)
            if p < len(mirror):
                mirror.pop(p)
        stack.append(joined)


@oracle_settings(examples=150)
@given(diagrams())
def test_disconnected_random_diagrams_match_the_dense_evaluator(diagram):
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    assume(any(_disconnected(t) for t in terms))
    program = tndiag.compile(diagram)
    inputs = inputs_for(diagram)
    got = program(**{n: inputs[n] for n in program.inputs})
    assert_matches_oracle(got, dense_value(diagram, inputs), "disconnected product")
    for plain in _plain(program):
        assert_components_joined_last(plain)


def disconnected_conv():
    """A conv, times the sum of Z, times the dot product A·B (a scalar), times Y·U."""
    g = ops.conv((2, 3, 8), (4, 3, 3))
    z, y, u, q = Index("z", 5), Index("y", 2), Index("u", 3), Index("q", 4)
    return Graph.of(list(g.tensors) + [variable("Z", [z]), variable("Y", [y, u]),
                                        variable("U", [u]), variable("A", [q]),
                                        variable("B", [q])], list(g.output) + [(y,)])


def test_disconnected_product_plan_is_golden():
    """conv1d, Y·U and A·B are planned apart (A·B to a scalar); Z, a component of one
    operand, is summed inside its join; scalar multiplies and one outer product join the
    results (golden printout, structured and dense lowerings)."""
    got = "\n\n".join(str(tndiag.compile(disconnected_conv(), lowerings=lowerings))
                      for lowerings in (None, ()))
    want = (GOLDEN / "disconnected_product.txt").read_text()
    assert got + "\n" == want


def test_disconnected_product_value():
    graph = disconnected_conv()
    x, w = torch.randn(2, 3, 8), torch.randn(4, 3, 3)
    z, y, u, a, b = torch.randn(5), torch.randn(2, 3), torch.randn(3), torch.randn(4), \
        torch.randn(4)
    want = torch.einsum("afd,h->afdh", torch.nn.functional.conv1d(x, w), y @ u) * (
        z.sum() * (a @ b))
    for lowerings in (None, ()):
        got = tndiag.compile(graph, lowerings=lowerings)(x, w, z, y, u, a, b)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
