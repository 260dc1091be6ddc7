"""Jupyter display: diagrams and pipeline results as SVG, programs as HTML, text as text.

:func:`register` adds formatters to a running IPython shell; ``import tndiag`` calls it when
IPython is loaded, so the IR itself never imports the renderer. Types are registered by
name, so nothing is imported until an object is displayed. Without graphviz's ``dot`` a
diagram falls back to its text form after one warning.
"""

from __future__ import annotations

import html
import warnings
from typing import Any, Optional

from tndiag.errors import RenderError

__all__ = ["register", "svg_or_none", "program_html"]

#: (module, class) whose objects display as a picture.
PICTURES = (("tndiag.ir.graph", "Graph"), ("tndiag.ir.graph", "Sum"),
            ("tndiag.passes.base", "PipelineResult"), ("tndiag.passes.base", "Trace"))

#: (module, class) of compiled programs, shown as preformatted text.
PROGRAMS = (("tndiag.codegen.program", "Program"), ("tndiag.codegen.program", "SumProgram"),
            ("tndiag.codegen.program", "SlicedProgram"))

_warned = False


def svg_or_none(obj: Any) -> Optional[str]:
    """SVG of ``obj``, or ``None`` (with one warning per session) when it cannot be drawn.

    >>> from tndiag import ops
    >>> svg_or_none(ops.conv((1, 2, 5), (3, 2, 3))).startswith("<?xml")
    True
    """
    global _warned
    from tndiag.render.svg import to_svg

    try:
        return to_svg(obj)
    except RenderError as err:
        if not _warned:
            _warned = True
            warnings.warn(f"tndiag cannot draw diagrams here, showing text instead: {err}",
                          RuntimeWarning, stacklevel=2)
        return None


def program_html(program: Any) -> str:
    """A compiled program as an HTML ``<pre>`` block (its printed form).

    >>> program_html("equation: a->a")
    '<pre>equation: a-&gt;a</pre>'
    """
    return "<pre>" + html.escape(str(program)) + "</pre>"


def _pretty_text(obj: Any, printer: Any, cycle: bool) -> None:
    printer.text(str(obj))


def register(shell: Any) -> None:
    """Register tndiag's display formatters with an IPython ``shell``.

    >>> from IPython.core.interactiveshell import InteractiveShell
    >>> from tndiag import ops
    >>> register(InteractiveShell.instance())
    >>> data, _ = InteractiveShell.instance().display_formatter.format(ops.conv(ndim=1))
    >>> sorted(data)
    ['image/svg+xml', 'text/plain']
    """
    formatters = shell.display_formatter.formatters
    for module, name in PICTURES:
        formatters["image/svg+xml"].for_type_by_name(module, name, svg_or_none)
        formatters["text/plain"].for_type_by_name(module, name, _pretty_text)
    for module, name in PROGRAMS:
        formatters["text/html"].for_type_by_name(module, name, program_html)
