"""Checks shared by the rewrite tests: same value before and after, verify after each pass."""

from __future__ import annotations

import torch

import tndiag
from tndiag.passes import run_pipeline

__all__ = ["random_inputs", "evaluate", "assert_same_value", "run_checked"]


def random_inputs(diagram, sizes=None, seed: int = 0) -> dict:
    """A float64 random tensor for each variable of ``diagram`` (by name)."""
    program = tndiag.compile(diagram, sizes)
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=gen, dtype=torch.float64)
            for name, shape in zip(program.inputs, program.input_shapes)}


def evaluate(diagram, inputs: dict, sizes=None) -> torch.Tensor:
    """Compile ``diagram`` and run it on ``inputs`` (extra names ignored)."""
    program = tndiag.compile(diagram, sizes)
    return program(**{name: inputs[name] for name in program.inputs})


def assert_same_value(before, after, sizes=None, seed: int = 0, rtol: float = 1e-10) -> None:
    """``before`` and ``after`` evaluate to the same tensor on random float64 data."""
    inputs = random_inputs(before, sizes, seed)
    want = evaluate(before, inputs, sizes)
    got = evaluate(after, inputs, sizes)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = want.abs().max().clamp_min(1e-300)
    err = ((got - want).abs().max() / scale).item()
    assert err <= rtol, f"relative error {err:.3g} > {rtol}"


def run_checked(diagram, pipeline: str):
    """Run ``pipeline`` (verify() runs after every pass) and return the result."""
    return run_pipeline(diagram, pipeline)
