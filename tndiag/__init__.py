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
from tndiag.codegen.tuning import get_tuning, set_tuning
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
    "parse": ("tndiag.syntax", "parse"),
    "to_text": ("tndiag.syntax", "to_text"),
}

__all__ = [
    "CompileError", "DiagramSyntaxError", "Graph", "Index", "InvalidArgumentError", "PassError",
    "RenderError", "ShapeError", "Sum", "TndiagError", "UnknownNameError", "VerifyError",
    "compile", "export", "ir", "ops", "passes", "run_pipeline", "simplify", "verify", *_LAZY,
]
__all__ += ["__version__", "canonicalize", "differentiate", "jvp", "vjp", "get_tuning",
            "set_tuning"]


def _register_jupyter() -> None:
    """In IPython/Jupyter, show diagrams, pipeline results and programs as pictures."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and hasattr(shell, "display_formatter"):
        from tndiag.render.jupyter import register

        register(shell)


_register_jupyter()


def export(diagram_or_program: Any, **options: Any) -> str:
    """Standalone torch source of a diagram or compiled program, its docstring quoting the
    diagram's text form (options as :func:`tndiag.codegen.export.export`).

    >>> source = export(ops.conv((1, 2, 5), (3, 2, 3)))
    >>> "Diagram (tndiag text form)::" in source and "pattern(" in source
    True
    """
    from tndiag.codegen.compile import checked_sizes
    from tndiag.codegen.export import export as export_source
    from tndiag.syntax import to_text

    diagram = options.get("diagram")
    if options.get("sizes") is not None:
        options["sizes"] = checked_sizes(options["sizes"])
    if diagram is None and isinstance(diagram_or_program, (Graph, Sum)):
        sizes = options.get("sizes")
        diagram = diagram_or_program.substitute(sizes) if sizes else diagram_or_program
    text = to_text(diagram) if isinstance(diagram, (Graph, Sum)) else None
    return export_source(diagram_or_program, **options, text=text)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        if attr is not None:
            value = getattr(value, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tndiag' has no attribute {name!r}")
