"""Torch implementations of the routes listed in :mod:`tndiag.codegen.routes`.

:data:`NATIVE_KERNELS` maps a route of a native convolution step to the factory of its
kernel (see :mod:`tndiag.backends.routes.conv`); :data:`WINDOW_RUNNERS` a route of a
window-sum step to its runner factory (see :mod:`tndiag.backends.routes.window`).
"""

from __future__ import annotations

from typing import Callable, Dict

from tndiag.backends.routes.conv import depth2d, gemm
from tndiag.backends.routes.window import prepare_classes, prepare_matmul

__all__ = ["NATIVE_KERNELS", "WINDOW_RUNNERS"]

#: Route name -> ``factory(spec, padding) -> kernel(a, b, bias)`` (``native`` is torch's own).
NATIVE_KERNELS: Dict[str, Callable] = {"gemm": gemm, "depth2d": depth2d}

#: Route name -> ``factory(step) -> runner(taken)`` of a window-sum step (``direct`` is the
#: per-tap default of :func:`tndiag.backends.torch_native.prepare_window_sum`).
WINDOW_RUNNERS: Dict[str, Callable] = {"classes": prepare_classes, "matmul": prepare_matmul}
