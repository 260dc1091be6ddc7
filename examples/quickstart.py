"""tndiag quick start: a strided, grouped 2-d convolution as a tensor-network diagram.

1. build the diagram (symbolic, then concrete) and print it;
2. compile it to an einsum program (equation, operands, contraction path, cost), once as a
   plain tensor network with dense patterns and once with the plan chosen by cost;
3. run it on random data and compare with ``torch.nn.functional.conv2d``;
4. use the torch-facing ``tndiag.functional.conv`` and ``tndiag.nn.Conv2d`` (loading a torch
   state dict) and compare again.

Run: ``python examples/quickstart.py`` (or ``tndiag demo``). Exits non-zero if a check fails.
"""

from __future__ import annotations

import sys

import torch

import tndiag

TOLERANCE = 1e-10  # max abs error allowed, relative to the output scale (float64)


def _compare(what: str, ours: torch.Tensor, ref: torch.Tensor) -> bool:
    """Print the max abs error of ``ours`` against ``ref`` and whether it is within tolerance."""
    err = (ours - ref).abs().max().item()
    scale = max(1.0, ref.abs().max().item())
    ok = ours.shape == ref.shape and err <= TOLERANCE * scale
    verdict = "matches" if ok else "DOES NOT match"
    print(f"   {what}: shape {list(ours.shape)}, max abs error {err:.2e} "
          f"(output scale {scale:.2f}) -> {verdict} torch")
    return ok


def show_diagram(x_shape, w_shape, hyper) -> tndiag.Graph:
    """Print the symbolic and concrete diagrams; return the concrete one."""
    symbolic = tndiag.ops.conv(ndim=2, **hyper)
    print("1. Diagram of conv2d with", ", ".join(f"{k}={v}" for k, v in hyper.items()))
    print("   symbolic output shape:", symbolic.output_shape)
    diagram = tndiag.ops.conv(x_shape, w_shape, **hyper)
    print(f"   concrete (input {list(x_shape)}, weight {list(w_shape)}):")
    for t in diagram.tensors:
        print("     ", t)
    out = ", ".join("(" + " ".join(repr(ix) for ix in axis) + ")" if len(axis) > 1
                    else repr(axis[0]) for axis in diagram.output)
    print(f"      -> output [{out}], shape {list(diagram.output_shape)}")
    tndiag.verify(diagram)
    print("   tndiag.verify: every IR invariant holds")
    return diagram


def main() -> int:
    """Run the quick start; return 0 when every comparison with torch passes."""
    torch.manual_seed(0)
    dtype = torch.float64
    x_shape, w_shape = (8, 4, 16, 16), (6, 2, 3, 3)
    hyper = dict(stride=2, padding=1, groups=2)
    diagram = show_diagram(x_shape, w_shape, hyper)

    dense = tndiag.compile(diagram, lowerings=())
    print("\n2. Compiled as a plain tensor network (every pattern a dense 0/1 tensor):")
    print("   " + str(dense).replace("\n", "\n   "))
    program = tndiag.compile(diagram)
    labels = [step.label for step in program.steps]
    print(f"   the plan compile() picks by cost instead runs the steps {labels}")
    cached = tndiag.compile(tndiag.ops.conv(x_shape, w_shape, **hyper)) is program
    print(f"   compiling an equal diagram again returns the cached program: {cached}")

    x, w = torch.randn(x_shape, dtype=dtype), torch.randn(w_shape, dtype=dtype)
    b = torch.randn(w_shape[0], dtype=dtype)
    reference = torch.nn.functional.conv2d(x, w, b, **hyper)
    bias = b.view(1, -1, 1, 1)
    print("\n3. Run on random float64 data and compare with torch.nn.functional.conv2d:")
    checks = [_compare("dense tensor network + bias", dense(x, w) + bias, reference),
              _compare("picked plan + bias", program(x, w) + bias, reference)]

    print("\n4. Torch-facing API:")
    checks.append(_compare("tndiag.functional.conv(x, w, b, stride=2, padding=1, groups=2)",
                           tndiag.functional.conv(x, w, b, **hyper), reference))
    theirs = torch.nn.Conv2d(4, 6, 3, dtype=dtype, **hyper)
    ours = tndiag.nn.Conv2d(4, 6, 3, dtype=dtype, **hyper)
    ours.load_state_dict(theirs.state_dict())
    print("   tndiag.nn.Conv2d loaded the state dict of torch.nn.Conv2d "
          f"(keys {list(theirs.state_dict())})")
    with torch.no_grad():
        checks.append(_compare("tndiag.nn.Conv2d(x) vs torch.nn.Conv2d(x)", ours(x), theirs(x)))

    passed = all(checks)
    print(f"\n{sum(checks)} of {len(checks)} comparisons with torch passed.")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
