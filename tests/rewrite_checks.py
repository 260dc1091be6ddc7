"""Checks shared by the rewrite tests: same value before and after, verify after each pass.

Values are compared against :func:`dense_evaluate`, an oracle independent of the codegen:
every tensor is materialized densely and one ``torch.einsum`` with a letter per index name
contracts them (no δ merging, no contraction path).
"""

from __future__ import annotations

import string

import torch

import tndiag
from tndiag.backends.torch import dense_pattern, dense_reduced
from tndiag.ir import Graph, Kind, Sum
from tndiag.passes import run_pipeline

__all__ = ["random_inputs", "evaluate", "dense_evaluate", "assert_same_value", "run_checked",
           "apply"]


def random_inputs(diagram, sizes=None, seed: int = 0) -> dict:
    """A float64 random tensor for each variable of ``diagram`` (by name)."""
    if sizes:
        diagram = diagram.substitute(dict(sizes))
    gen = torch.Generator().manual_seed(seed)
    shapes = {t.name: [int(s) for s in t.shape] for t in diagram.variables()}
    return {name: torch.randn(shape, generator=gen, dtype=torch.float64)
            for name, shape in shapes.items()}


def evaluate(diagram, inputs: dict, sizes=None) -> torch.Tensor:
    """Compile ``diagram`` and run it on ``inputs`` (extra names ignored)."""
    program = tndiag.compile(diagram, sizes)
    return program(**{name: inputs[name] for name in program.inputs})


def _dense(t, inputs) -> torch.Tensor:
    shape = [int(ix.size) for ix in t.indices]
    if t.kind is Kind.VARIABLE:
        return inputs[t.name].reshape(shape)
    if t.kind is Kind.CONSTANT:
        return torch.full(shape, float(t.value), dtype=torch.float64)
    if t.kind is Kind.DELTA:
        out = torch.zeros(shape, dtype=torch.float64)
        idx = torch.arange(shape[0])
        out[(idx,) * len(shape)] = 1
        return out
    p = t.params
    if t.kind is Kind.PATTERN:
        return dense_pattern(*shape, p.stride, p.pad_left, p.dilation, dtype=torch.float64)
    I, K = shape
    return dense_reduced(I, int(t.out_size), K, p.stride, p.pad_left, p.dilation,
                         dtype=torch.float64)


def dense_evaluate(diagram, inputs: dict, sizes=None) -> torch.Tensor:
    """Brute-force value of a (concrete or specialised) diagram."""
    if sizes:
        diagram = diagram.substitute(dict(sizes))
    if isinstance(diagram, Sum):
        return sum(dense_evaluate(t, inputs) for t in diagram.terms)
    assert isinstance(diagram, Graph)
    letters = {}
    for name in diagram.indices():
        letters[name] = string.ascii_letters[len(letters)]
    operands = [_dense(t, inputs) for t in diagram.tensors]
    subs = ["".join(letters[ix.name] for ix in t.indices) for t in diagram.tensors]
    out = "".join(letters[ix.name] for ix in diagram.output_indices)
    value = torch.einsum(",".join(subs) + "->" + out, *operands)
    return value.reshape([int(s) for s in diagram.output_shape])


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float, what: str) -> None:
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = want.abs().max().clamp_min(1e-300)
    err = ((got - want).abs().max() / scale).item()
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol}"


def assert_same_value(before, after, sizes=None, seed: int = 0, rtol: float = 1e-10) -> None:
    """``after`` (compiled, and by the dense oracle) equals the oracle's value of ``before``
    on random float64 data."""
    inputs = random_inputs(before, sizes, seed)
    want = dense_evaluate(before, inputs, sizes)
    _close(evaluate(after, inputs, sizes), want, rtol, "compiled")
    _close(dense_evaluate(after, inputs, sizes), want, rtol, "dense oracle")


def run_checked(diagram, pipeline: str):
    """Run ``pipeline`` (verify() runs after every pass) and return the result."""
    return run_pipeline(diagram, pipeline)


def apply(pass_name: str, diagram):
    """The diagram after the one pass ``pass_name`` (verified by ``run_pipeline``)."""
    return run_pipeline(diagram, pass_name).diagram
