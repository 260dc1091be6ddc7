"""Torch implementations of the routes listed in :mod:`tndiag.codegen.routes`.

A routed step runs as a recipe, like every step of the backend
(:mod:`tndiag.backends.torch_native`): :func:`native_route_recipe` for a native convolution
step (run by :func:`~tndiag.backends.routes.conv.run_routed`, the route kernels keyed by
name in :data:`~tndiag.backends.routes.conv.ROUTE_KERNELS`), :data:`WINDOW_RECIPES` for a
window-sum step (:mod:`tndiag.backends.routes.window`); a patch-gram step (KFC) runs
:func:`~tndiag.backends.routes.patch_gram.run_patch_gram` with the route's kernel from
:data:`~tndiag.backends.routes.patch_gram.PATCH_GRAM_ROUTES`. The kernel modules import only
torch (and tndiag names for annotations), so :func:`tndiag.export` writes their text.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from tndiag.backends.routes.conv import geometry, run_routed
from tndiag.backends.routes.window import classes_recipe, matmul_recipe
from tndiag.codegen.native import NativeConv

__all__ = ["WINDOW_RECIPES", "native_route_recipe"]

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

