"""``to_svg``: DOT text laid out by the graphviz ``dot`` binary (run as a subprocess)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Collection

from tndiag.errors import RenderError
from tndiag.ir import Graph, Sum
from tndiag.render.dot import to_dot
from tndiag.render.trace import trace_to_dot

__all__ = ["to_svg", "dot_source", "run_dot"]

#: Output formats ``run_dot`` accepts (passed to ``dot -T``).
FORMATS = ("svg", "png", "pdf")


def dot_source(obj: Any, *, sizes: bool = False, highlight: Collection[str] = ()) -> str:
    """DOT text of a diagram, or of a pipeline result / trace(s) as a before/after strip.

    >>> from tndiag import ops
    >>> dot_source(ops.conv(ndim=1)).startswith('graph "diagram"')
    True
    """
    if isinstance(obj, (Graph, Sum)):
        return to_dot(obj, sizes=sizes, highlight=highlight)
    return trace_to_dot(obj, sizes=sizes)


def run_dot(source: str, fmt: str = "svg", timeout: float = 60.0) -> bytes:
    """Lay out DOT ``source`` with graphviz and return the bytes of format ``fmt``.

    Raises:
        RenderError: when ``dot`` is missing, fails, or ``fmt`` is unknown.

    >>> run_dot("graph { a -- b }", "png")[:4]
    b'\\x89PNG'
    """
    if fmt not in FORMATS:
        raise RenderError(f"unknown output format {fmt!r}; expected one of {list(FORMATS)}")
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError("the graphviz 'dot' program was not found on PATH; install graphviz "
                          "(e.g. 'apt-get install graphviz' or scripts/install-graphviz.sh)")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"graphviz 'dot' took longer than {timeout:g} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError("graphviz 'dot' failed: " + (message[0] if message else "no message"))
    return done.stdout


def to_svg(obj: Any, *, sizes: bool = False, highlight: Collection[str] = ()) -> str:
    """SVG text of a diagram (Graph or Sum) or of a pipeline's traces (a before/after strip).

    Args:
        obj: a diagram, a :class:`~tndiag.passes.PipelineResult`, a trace, or a list of traces.
        sizes: label legs with their sizes too.
        highlight: tensor and index names drawn in red (diagrams only).

    Returns:
        The SVG document as text.

    Raises:
        RenderError: when graphviz is missing or fails.

    >>> from tndiag import ops
    >>> "<svg" in to_svg(ops.conv((1, 2, 5), (3, 2, 3)))
    True
    """
    return run_dot(dot_source(obj, sizes=sizes, highlight=highlight), "svg").decode("utf-8")
