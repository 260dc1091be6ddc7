"""Helpers for the differentiation / curvature tests: random inputs, evaluation, errors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from random_diagrams import positions_for

import tndiag
from tndiag.ir import Sum, verify
from tndiag.passes import run_pipeline

__all__ = ["inputs_for", "evaluate", "rel_err", "assert_close", "pipeline", "TOL", "conv_cases",
           "torch_conv", "build_conv", "pad_pairs"]

#: Relative error allowed against float64 oracles.
TOL = 1e-10


def inputs_for(diagram, seed: int = 0) -> dict:
    """A float64 random tensor per variable name of ``diagram`` (every term of a sum)."""
    gen = torch.Generator().manual_seed(seed)
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    shapes = {}
    for term in terms:
        for t in term.variables():
            shapes.setdefault(t.name, [int(s) for s in t.shape])
    found = {n: torch.randn(s, generator=gen, dtype=torch.float64) for n, s in shapes.items()}
    return {**found, **positions_for(diagram, gen)}  # kept positions of sliced patterns


def evaluate(diagram, tensors: dict) -> torch.Tensor:
    """Verify, compile and run ``diagram`` on the tensors it needs (others ignored)."""
    verify(diagram)
    program = tndiag.compile(diagram)
    return program(**{name: tensors[name] for name in program.inputs})


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """Max abs error relative to the largest entry of ``want`` (shapes must agree)."""
    assert tuple(got.shape) == tuple(want.shape), (tuple(got.shape), tuple(want.shape))
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-300)).item()


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str = "") -> None:
    """Relative error at most :data:`TOL`."""
    err = rel_err(got, want)
    assert err <= TOL, f"{what}: relative error {err:.3g}"


def pipeline(diagram, text: str):
    """Run a pipeline (``verify()`` after each pass) and verify the result once more."""
    result = run_pipeline(diagram, text)
    verify(result.diagram)
    return result.diagram


# -- convolution cases: hypothesis strategy and torch references -------------------------


def pad_pairs(padding, ndim, kernel, dilation):
    """Padding as (left, right) pairs per dimension (torch semantics for 'same')."""
    if padding == "valid":
        return [(0, 0)] * ndim
    if padding == "same":
        D = (dilation,) * ndim if isinstance(dilation, int) else dilation
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for d, k in zip(D, kernel)]
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    if isinstance(padding[0], int):
        return [(p, p) for p in padding]
    return [tuple(p) for p in padding]


def _tup(v, ndim):
    return (v,) * ndim if isinstance(v, int) else tuple(v)


@st.composite
def conv_cases(draw, transposed=False, max_ndim=2, max_batch=2):
    """A tiny (transposed) convolution torch accepts: shapes and hyper-parameters."""
    ndim = draw(st.integers(1, max_ndim))
    groups = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    K = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    S = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    D = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    N = draw(st.integers(1, max_batch))
    spans = [d * (k - 1) + 1 for d, k in zip(D, K)]
    if transposed:
        P = tuple(draw(st.integers(0, 1)) for _ in range(ndim))
        op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(S, D))
        I = []
        for d in range(ndim):
            low = max(1, -(-(2 * P[d] - spans[d] - op[d] + 1) // S[d]) + 1)
            I.append(draw(st.integers(low, low + 2)))
        return dict(transposed=True, x_shape=(N, cg * groups, *I),
                    w_shape=(cg * groups, og, *K), stride=S, padding=P, dilation=D,
                    groups=groups, output_padding=op)
    kinds = ["int", "pairs", "valid"] + (["same"] if all(s == 1 for s in S) else [])
    kind = draw(st.sampled_from(kinds))
    padding = {"int": draw(st.integers(0, 1)), "valid": "valid", "same": "same",
               "pairs": tuple((draw(st.integers(0, 2)), draw(st.integers(0, 1)))
                              for _ in range(ndim))}[kind]
    pads = pad_pairs(padding, ndim, K, D)
    I = [draw(st.integers(max(1, sp - pl - pr), max(1, sp - pl - pr) + 2))
         for sp, (pl, pr) in zip(spans, pads)]
    return dict(transposed=False, x_shape=(N, cg * groups, *I), w_shape=(og * groups, cg, *K),
                stride=S, padding=padding, dilation=D, groups=groups)


def build_conv(case, bias=False):
    """The tndiag diagram of ``case``."""
    from tndiag import ops

    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"], bias=bias)
    if case["transposed"]:
        return ops.conv_transpose(case["x_shape"], case["w_shape"],
                                  output_padding=case["output_padding"], **kw)
    return ops.conv(case["x_shape"], case["w_shape"], **kw)


def torch_conv(case):
    """``f(x, w, b=None)`` computing ``case`` with torch's kernels (explicit F.pad for pairs)."""
    ndim = len(case["w_shape"]) - 2
    if case["transposed"]:
        fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[ndim]
        return lambda x, w, b=None: fn(x, w, b, case["stride"], case["padding"],
                                       case["output_padding"], case["groups"], case["dilation"])
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[ndim]
    padding = case["padding"]
    if isinstance(padding, tuple) and not isinstance(padding[0], int):
        flat = [v for pair in reversed(padding) for v in pair]
        return lambda x, w, b=None: fn(F.pad(x, flat), w, b, case["stride"], 0,
                                       case["dilation"], case["groups"])
    return lambda x, w, b=None: fn(x, w, b, case["stride"], padding, case["dilation"],
                                   case["groups"])
