"""tndiag: a symbolic tensor-network diagram compiler for convolutions.

``import tndiag`` is light: torch, graphviz and lark load only when a feature needs them.

>>> import tndiag
>>> g = tndiag.ops.conv((8, 4, 16, 16), (6, 2, 3, 3), padding=1, groups=2)
>>> g.output_shape
(8, 6, 16, 16)
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from tndiag import ir, ops, passes
from tndiag._version import __version__
from tndiag.codegen import compile
from tndiag.errors import (
    CompileError,
    DiagramSyntaxError,
    InvalidArgumentError,
    PassError,
    RenderError,
    ShapeError,
    TndiagError,
    UnknownNameError,
    VerifyError,
)
from tndiag.ir import Graph, Index, Sum, verify
from tndiag.passes import run_pipeline
from tndiag.passes.canonicalize import canonicalize
from tndiag.passes.differentiate import differentiate, jvp, vjp
from tndiag.passes.simplify import simplify

# Names resolved on first use, so that importing tndiag does not import torch, lark or graphviz.
_LAZY = {
    "functional": ("tndiag.functional", None),
    "nn": ("tndiag.nn", None),
    "to_dot": ("tndiag.render", "to_dot"),
    "to_svg": ("tndiag.render", "to_svg"),
    "export": ("tndiag.codegen.export", "export"),
    "parse": ("tndiag.syntax", "parse"),
    "to_text": ("tndiag.syntax", "to_text"),
}

__all__ = [
    "CompileError", "DiagramSyntaxError", "Graph", "Index", "InvalidArgumentError", "PassError",
    "RenderError", "ShapeError", "Sum", "TndiagError", "UnknownNameError", "VerifyError",
    "compile", "ir", "ops", "passes", "run_pipeline", "simplify", "verify", *_LAZY,
]
__all__ += ["__version__", "canonicalize", "differentiate", "jvp", "vjp"]


def _register_jupyter() -> None:
    """In IPython/Jupyter, show diagrams, pipeline results and programs as pictures."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and hasattr(shell, "display_formatter"):
        from tndiag.render.jupyter import register

        register(shell)


_register_jupyter()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        if attr is not None:
            value = getattr(value, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tndiag' has no attribute {name!r}")
