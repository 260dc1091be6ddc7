"""Window sums ``Σ_o Π[i, o, k]·X[.., i, ..]`` in one pass over the input: two routes.

Every tap's window visits the positions ``i ≡ first_k (mod S)`` from ``first_k`` to ``last_k``.
The ``classes`` route sums the input once per class (a reshape ``[.., I/S, S, ..]`` and one
sum), and multiplies those sums, next to the few positions of each class that lie outside
some tap's window (before ``first_k`` or after ``last_k``), by one small matrix that picks
each tap's class and subtracts those positions (:func:`classes_literal`). For 1×1 convolutions,
patchify (``S = K``) and framing (``K = 2S``) layers this is a single read.
The ``matmul`` route multiplies the input's window axis by the ``[I, K]`` count matrix
``Σ_o Π`` — one GEMM reading the input once.
"""

from __future__ import annotations

from typing import Callable, List, Tuple

import torch

from tndiag.backends.kernels import axis_product, class_sums, literal_tensor, window_classes
from tndiag.codegen.lowerings.window_sum import WindowSpec

__all__ = ["classes_recipe", "matmul_recipe", "run_classes", "run_matmul", "run_axes",
           "class_sums", "edges", "classes_literal", "counts"]


def edges(w: WindowSpec) -> Tuple[int, List[List[float]], int, List[List[float]]]:
    """(head length, head matrix, tail start, tail matrix): 1 where a class position lies
    before / after a tap's window."""
    S, I = w.stride, w.size
    head = max(first for first, _ in w.windows)
    start = min(last for _, last in w.windows) + 1
    before = [[1.0 if i < f and (f - i) % S == 0 else 0.0 for f, _ in w.windows]
              for i in range(head)]
    after = [[1.0 if i > last and (i - f) % S == 0 else 0.0 for f, last in w.windows]
             for i in range(start, I)]
    return head, before, start, after


def classes_literal(w: WindowSpec) -> tuple:
    """``(axis, S, I, head length, tail start, matrix)``, the literal of
    :func:`~tndiag.backends.kernels.window_classes`: row ``c < S`` of the ``[S + head + tail,
    K]`` matrix picks class ``c`` for the taps whose windows lie in it; a head or tail row
    subtracts its position from each tap whose class holds it outside the window.

    >>> classes_literal(WindowSpec(0, 5, 2, ((0, 2), (1, 3))))  # 0+2 = class 0 minus x[4]
    (0, 2, 5, 1, 3, ((1.0, 0.0), (0.0, 1.0), (0.0, 0.0), (0.0, 0.0), (-1.0, 0.0)))
    """
    head, before, start, after = edges(w)
    pick = [[1.0 if first % w.stride == c else 0.0 for first, _ in w.windows]
            for c in range(w.stride)]
    borders = [[-v if v else 0.0 for v in row] for row in before + after]
    return (w.axis, w.stride, w.size, head, start, tuple(map(tuple, pick + borders)))


def classes_recipe(w: WindowSpec) -> Tuple[Callable, tuple]:
    """``(run_classes, literal)`` of a window-sum step on the ``classes`` route.

    >>> run, recipe = classes_recipe(WindowSpec(0, 5, 2, ((0, 2), (1, 3))))
    >>> run(recipe, [torch.arange(5.0)]).tolist()  # 0+2, 1+3
    [2.0, 4.0]
    """
    return run_classes, classes_literal(w)


def run_classes(recipe: tuple, taken: List[torch.Tensor]) -> torch.Tensor:
    """The ``classes`` route (see the module docstring), the taps last."""
    return window_classes(taken[0], recipe, None).movedim(recipe[0], -1)


def counts(w: WindowSpec) -> List[List[float]]:
    """The ``[I, K]`` matrix ``Σ_o Π[i, o, k]`` of a window spec (1 where tap k reaches i).

    >>> counts(WindowSpec(0, 3, 1, ((0, 1), (1, 2))))
    [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    """
    return [[1.0 if first <= i <= last and (i - first) % w.stride == 0 else 0.0
             for first, last in w.windows] for i in range(w.size)]


def matmul_recipe(w: WindowSpec) -> Tuple[Callable, tuple]:
    """``(run_matmul, literal)`` of a window-sum step on the ``matmul`` route.

    >>> run, recipe = matmul_recipe(WindowSpec(0, 5, 2, ((0, 2), (1, 3))))
    >>> run(recipe, [torch.arange(5.0)]).tolist()
    [2.0, 4.0]
    """
    return run_matmul, (w.axis, tuple(map(tuple, counts(w))))


def run_matmul(recipe: tuple, taken: List[torch.Tensor]) -> torch.Tensor:
    """The ``matmul`` route: the window axis times the count matrix, the taps last."""
    axis, table = recipe
    x = taken[0]
    return axis_product(x, literal_tensor(table, x.dtype, x.device), axis).movedim(axis, -1)


#: Route -> the kernel that runs one axis of a window-sum step along it.
AXIS_KERNELS = {"classes": run_classes, "matmul": run_matmul}


def run_axes(recipe: tuple, taken: List[torch.Tensor]) -> torch.Tensor:
    """``(axes, scale)``, per axis ``(route, literal, axis)``: that route's kernel on the axis,
    its taps moved into the axis' place (an axis-by-axis window-sum step), times ``scale``.

    >>> _, literal = matmul_recipe(WindowSpec(0, 5, 2, ((0, 2), (1, 3))))
    >>> run_axes(((("matmul", literal, 0),), 0.5), [torch.arange(5.0)]).tolist()
    [1.0, 2.0]
    """
    axes, scale = recipe
    x = taken[0]
    for route, literal, axis in axes:
        x = AXIS_KERNELS[route](literal, [x]).movedim(-1, axis)
    return x if scale == 1 else x * scale
