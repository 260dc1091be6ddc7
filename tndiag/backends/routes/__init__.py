"""Torch implementations of the routes listed in :mod:`tndiag.codegen.routes`.

A routed step runs as a recipe, like every step of the backend
(:mod:`tndiag.backends.torch_native`): :func:`native_route_recipe` for a native convolution
step (the kernels of :mod:`tndiag.backends.routes.conv`, keyed by route in
:data:`NATIVE_KERNELS`), :data:`WINDOW_RECIPES` for a window-sum step
(:mod:`tndiag.backends.routes.window`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from tndiag.backends.kernels import native_operands
from tndiag.backends.routes.conv import depth2d, gemm, geometry
from tndiag.backends.routes.window import classes_recipe, matmul_recipe
from tndiag.codegen.native import NativeConv

__all__ = ["NATIVE_KERNELS", "WINDOW_RECIPES", "native_route_recipe", "run_routed"]

#: Route name -> ``kernel(a, b, bias, geometry)`` of a native step (``native``: torch's own).
NATIVE_KERNELS: Dict[str, Callable] = {"gemm": gemm, "depth2d": depth2d}

#: Route name -> ``recipe(window spec)`` of a window-sum step (``direct``: the default).
WINDOW_RECIPES: Dict[str, Callable] = {"classes": classes_recipe, "matmul": matmul_recipe}


def native_route_recipe(route: str, s: NativeConv, how_a: Optional[tuple],
                        how_b: Optional[tuple], bias,
                        out_shape: tuple) -> Tuple[Callable, tuple]:
    """``(run_routed, literal)`` of a native step along ``route``; the arrangements of A, B
    and the bias are those of torch's kernel (:func:`~tndiag.backends.kernels.run_native`)."""
    pads = list(zip(s.pad_left, s.pad_right))
    symmetric = all(lo == hi and lo >= 0 for lo, hi in pads)
    padding = [lo for lo, _ in pads] if symmetric else [0] * s.ndim
    pre = None if symmetric or s.role == "transpose" else [p for lr in reversed(pads)
                                                           for p in lr]
    return run_routed, (route, how_a, how_b, bias, pre, out_shape, geometry(s, padding))


def run_routed(recipe: tuple, taken: List[Any]) -> Any:
    """Arrange A, B (and the bias), pad, run the route's kernel, reshape to the result."""
    route, how_a, how_b, how_bias, pad, out_shape, geom = recipe
    y = NATIVE_KERNELS[route](*native_operands(taken, how_a, how_b, how_bias, pad), geom)
    return y if y.shape == out_shape else y.reshape(out_shape)
