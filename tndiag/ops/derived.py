"""Derivatives of a convolution, built by differentiating its diagram (never by hand).

Each builder takes the arguments of :func:`~tndiag.ops.conv` (or, with ``transposed=True``,
of :func:`~tndiag.ops.conv_transpose`) and applies the ``vjp``, ``jvp`` or
``differentiate`` pass to the forward diagram. The vector of a VJP is the variable ``V``
with the output's legs (``V(Y)`` in docs/method.md); the tangent of a JVP is ``V`` with the legs
of the tensor it replaces.

>>> conv_weight_vjp((2, 3, 8), (4, 3, 3)).output_shape
(4, 3, 3)
"""

from __future__ import annotations

from typing import Any, Sequence

from tndiag.ir import Diagram
from tndiag.ops.conv import conv, conv_transpose
from tndiag.ops.hyper import check_flag
from tndiag.passes.differentiate import differentiate, jvp, vjp

__all__ = ["conv_input_vjp", "conv_weight_vjp", "conv_input_jvp", "conv_weight_jvp",
           "conv_jacobian"]


def _forward(input_shape, weight_shape, transposed: bool, kwargs: dict) -> Diagram:
    build = conv_transpose if check_flag(transposed, "transposed") else conv
    return build(input_shape, weight_shape, **kwargs)


def conv_input_vjp(input_shape: Sequence | None = None, weight_shape: Sequence | None = None,
                   *, transposed: bool = False, **kwargs: Any) -> Diagram:
    """Input VJP ``Σ V ∂Y/∂X`` (for a convolution: the transposed convolution of ``V``).

    Args:
        input_shape: ``(N, C_in, *I)`` or None for symbols.
        weight_shape: the weight's shape, or None for symbols.
        transposed: differentiate a transposed convolution instead.
        **kwargs: hyper-parameters of :func:`~tndiag.ops.conv` / ``conv_transpose``.

    Returns:
        A diagram over ``W`` and ``V`` with the input's shape.

    >>> conv_input_vjp((2, 3, 8), (4, 3, 3), stride=2).output_shape
    (2, 3, 8)
    """
    return vjp(_forward(input_shape, weight_shape, transposed, kwargs), "X", "V")


def conv_weight_vjp(input_shape: Sequence | None = None, weight_shape: Sequence | None = None,
                    *, transposed: bool = False, **kwargs: Any) -> Diagram:
    """Weight VJP ``Σ V ∂Y/∂W`` (the weight gradient), a diagram over ``X`` and ``V``.

    >>> conv_weight_vjp((2, 4, 8), (6, 2, 3), groups=2).output_shape
    (6, 2, 3)
    """
    return vjp(_forward(input_shape, weight_shape, transposed, kwargs), "W", "V")


def conv_input_jvp(input_shape: Sequence | None = None, weight_shape: Sequence | None = None,
                   *, transposed: bool = False, **kwargs: Any) -> Diagram:
    """Input JVP: the forward diagram with the tangent ``V`` in ``X``'s place.

    >>> sorted(t.name for t in conv_input_jvp((2, 3, 8), (4, 3, 3)).variables())
    ['V', 'W']
    """
    return jvp(_forward(input_shape, weight_shape, transposed, kwargs), "X", "V")


def conv_weight_jvp(input_shape: Sequence | None = None, weight_shape: Sequence | None = None,
                    *, transposed: bool = False, **kwargs: Any) -> Diagram:
    """Weight JVP: the forward diagram with the tangent ``V`` in ``W``'s place.

    >>> conv_weight_jvp((2, 3, 8), (4, 3, 3)).output_shape
    (2, 4, 6)
    """
    return jvp(_forward(input_shape, weight_shape, transposed, kwargs), "W", "V")


def conv_jacobian(input_shape: Sequence | None = None, weight_shape: Sequence | None = None,
                  wrt="W", *, transposed: bool = False, **kwargs: Any) -> Diagram:
    """Jacobian of the (transposed) convolution w.r.t. ``wrt`` (``"X"``, ``"W"``, ``"X|W"``, ...).

    The result has shape ``Y.shape + X.shape`` (or ``+ W.shape``), as
    ``torch.autograd.functional.jacobian``.

    >>> conv_jacobian((1, 2, 5), (3, 2, 2), "X").output_shape
    (1, 3, 4, 1, 2, 5)
    """
    return differentiate(_forward(input_shape, weight_shape, transposed, kwargs), wrt)
