"""Pictures of what passes did: one before/after pair per pass, the changed part highlighted.

A trace is anything with ``pass_name``, ``options``, ``events``, ``before`` and ``after``
(:class:`tndiag.passes.Trace`); a pipeline result is anything with ``traces``. The changed
part is what differs between ``before`` and ``after`` (tensors and indices removed on the
left, added on the right) plus the tensors and indices named by the rules that fired.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, List, Sequence, Set, Tuple

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram, Graph, Sum
from tndiag.render.dot import Options, _header, _node_ids, _quote, diagram_lines

__all__ = ["trace_to_dot", "changed_names", "as_traces"]


def _terms(diagram: Diagram) -> Tuple[Graph, ...]:
    return diagram.terms if isinstance(diagram, Sum) else (diagram,)


def _parts(diagram: Diagram) -> Tuple[Counter, Counter]:
    tensors: Counter = Counter()
    indices: Counter = Counter()
    for term in _terms(diagram):
        tensors.update(term.tensors)
        indices.update(term.indices().values())
    return tensors, indices


def _names_in(diagram: Diagram) -> Set[str]:
    names: Set[str] = set()
    for term in _terms(diagram):
        names.update(term.names)
        names.update(term.indices())
    return names


def changed_names(trace: Any) -> Tuple[frozenset, frozenset]:
    """Names to highlight in ``trace.before`` (removed or touched) and ``trace.after`` (added).

    >>> from types import SimpleNamespace
    >>> from tndiag import ops
    >>> a, b = ops.conv((1, 1, 4), (1, 1, 2)), ops.conv((1, 1, 4), (1, 1, 3))
    >>> before, after = changed_names(SimpleNamespace(before=a, after=b, events=()))
    >>> sorted(before), sorted(after)
    (['P1', 'W', 'k1', 'o1'], ['P1', 'W', 'k1', 'o1'])
    """
    t_before, i_before = _parts(trace.before)
    t_after, i_after = _parts(trace.after)
    removed = {t.name for t in t_before - t_after} | {ix.name for ix in i_before - i_after}
    added = {t.name for t in t_after - t_before} | {ix.name for ix in i_after - i_before}
    touched: Set[str] = set()
    for event in getattr(trace, "events", ()):
        if getattr(event, "status", "fired") == "fired":
            touched.update(event.tensors)
            touched.update(event.indices)
    return (frozenset((removed | touched) & _names_in(trace.before)),
            frozenset((added | touched) & _names_in(trace.after)))


def as_traces(obj: Any) -> Tuple[Any, ...]:
    """The traces of a pipeline result, a single trace, or a sequence of traces."""
    if hasattr(obj, "traces"):
        return tuple(obj.traces)
    if hasattr(obj, "before") and hasattr(obj, "after"):
        return (obj,)
    if isinstance(obj, Sequence) and all(hasattr(t, "before") for t in obj):
        return tuple(obj)
    raise InvalidArgumentError(
        f"expected a pipeline result, a trace or a list of traces, got {type(obj).__name__}")


def _anchor(diagram: Diagram, prefix: str) -> str:
    if isinstance(diagram, Sum):
        return _anchor(diagram.terms[0], f"{prefix}s0/")
    return _node_ids(diagram, prefix)[0] if diagram.tensors else f"{prefix}unit"


def _cluster(diagram: Diagram, prefix: str, label: str, opts: Options) -> List[str]:
    lines = [f"subgraph {_quote('cluster_' + prefix)} {{",
             f'  label={_quote(label)}; style="rounded"; color="#bbbbbb";']
    lines += ["  " + ln for ln in diagram_lines(diagram, prefix, opts)]
    lines.append("}")
    return lines


def _option_text(value: Any) -> str:
    """Options as pipeline text writes them (tuples as ``a|b``)."""
    if isinstance(value, (tuple, list)):
        return "|".join(str(v) for v in value)
    return str(value)


def _pass_title(trace: Any) -> str:
    options = ",".join(f"{k}={_option_text(v)}" for k, v in getattr(trace, "options", ()))
    return trace.pass_name + ("{" + options + "}" if options else "")


def _pair(k: int, trace: Any, sizes: bool) -> List[str]:
    before, after = changed_names(trace)
    b, a = f"p{k}b/", f"p{k}a/"
    lines = _cluster(trace.before, b, "before", Options(sizes, before))
    lines += _cluster(trace.after, a, "after", Options(sizes, after))
    arrow = f"p{k}:arrow"
    fired = len([e for e in getattr(trace, "events", ()) if getattr(e, "status", "") == "fired"])
    label = f"{k + 1}. {_pass_title(trace)} ⟶\n{fired} rewrite(s)"
    lines.append(f"{_quote(arrow)} [shape=plaintext, fontsize=13, label={_quote(label)}];")
    lines.append(f"{_quote(_anchor(trace.before, b))} -- {_quote(arrow)} [style=invis];")
    lines.append(f"{_quote(arrow)} -- {_quote(_anchor(trace.after, a))} [style=invis];")
    return lines


def trace_to_dot(traces: Any, *, sizes: bool = False, name: str = "trace") -> str:
    """DOT text of a pipeline's traces: per pass, before ⟶ after with the changes in red.

    Args:
        traces: a :class:`~tndiag.passes.PipelineResult`, a ``Trace`` or a list of them.
        sizes: label legs with their sizes too.
        name: the DOT graph's name.

    Returns:
        Deterministic DOT source; the pairs of successive passes are stacked.

    Raises:
        InvalidArgumentError: when ``traces`` holds no trace.

    >>> from tndiag import ops, run_pipeline
    >>> text = trace_to_dot(run_pipeline(ops.conv(ndim=1), "identity"))
    >>> "1. identity" in text
    True
    """
    items: Tuple[Any, ...] = as_traces(traces)
    if not items:
        raise InvalidArgumentError("the pipeline has no traces to draw")
    lines = _header(name, "")
    # graphviz stacks unconnected pairs last-first: emit them in reverse to read top-down
    for k in reversed(range(len(items))):
        lines += ["  " + ln for ln in _pair(k, items[k], sizes)]
    lines.append("}")
    return "\n".join(lines) + "\n"
