"""Pictures of diagrams: ``to_dot`` (pure DOT text) and ``to_svg`` (laid out by graphviz).

See ``docs/rendering.md`` for what the pictures show.
"""

from tndiag.render.dot import to_dot
from tndiag.render.svg import dot_source, run_dot, to_svg
from tndiag.render.trace import changed_names, trace_to_dot

__all__ = ["to_dot", "to_svg", "trace_to_dot", "changed_names", "dot_source", "run_dot"]
