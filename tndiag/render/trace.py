"""Pictures of what passes did: a one-row film strip ``D0 → D1 → D2 → ...``.

A trace is anything with ``pass_name``, ``options``, ``events``, ``before`` and ``after``
(:class:`tndiag.passes.Trace`); a pipeline result is anything with ``traces``. Each diagram
is drawn once, in a frame captioned with its result axes; the arrow between two frames names
the pass and its rewrite count. Passes that changed nothing become a line of the next arrow's
label. In a frame, the part the pass added or rewrote is red; after a derivative
(``differentiate``, ``vjp``, ``jvp``) the cut sub-network — the Jacobian, what is left once the
differentiated tensors are cut out — is shaded instead, as in the paper's figures.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, List, Sequence, Set, Tuple

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram, Graph, Sum
from tndiag.render.dot import Options, _header, _node_ids, _quote, diagram_lines, result_text

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


#: Passes whose result is drawn with the Jacobian part shaded instead of red highlights.
DERIVATIVES = ("differentiate", "vjp", "jvp")


def _firsts(diagram: Diagram, prefix: str) -> List[str]:
    if isinstance(diagram, Sum):
        return _firsts(diagram.terms[0], f"{prefix}s0/")
    return _node_ids(diagram, prefix) or [f"{prefix}unit"]


def _lasts(diagram: Diagram, prefix: str) -> List[str]:
    if isinstance(diagram, Sum):
        k = len(diagram.terms) - 1
        return _lasts(diagram.terms[k], f"{prefix}s{k}/")
    return [f"{prefix}out"] if diagram.output else _firsts(diagram, prefix)


def _option_text(value: Any) -> str:
    """Options as pipeline text writes them (tuples as ``a|b``)."""
    if isinstance(value, (tuple, list)):
        return "|".join(str(v) for v in value)
    return str(value)


def _pass_title(trace: Any) -> str:
    options = ",".join(f"{k}={_option_text(v)}" for k, v in getattr(trace, "options", ()))
    return trace.pass_name + ("{" + options + "}" if options else "")


def _rewrites(trace: Any) -> int:
    return len([e for e in getattr(trace, "events", ()) if getattr(e, "status", "") == "fired"])


def _frame_options(trace: Any, sizes: bool) -> Options:
    """How the diagram after ``trace`` is drawn: shaded Jacobian or red changes."""
    if trace is None:
        return Options(sizes)
    if trace.pass_name in DERIVATIVES:
        cut = set(dict(getattr(trace, "options", ())).get("wrt", ()) or ())
        kept = frozenset(n for n in _names_in(trace.before) if n not in cut)
        label = "∂ / ∂" + ", ".join(sorted(cut)) if cut else ""
        return Options(sizes, shade=kept, shade_label=label)
    return Options(sizes, changed_names(trace)[1])


def _frames(items: Sequence[Any]) -> List[Tuple[Diagram, Any, List[str]]]:
    """``(diagram, trace that made it, arrow lines before it)``; unchanged passes fold in."""
    frames: List[Tuple[Diagram, Any, List[str]]] = [(items[0].before, None, [])]
    pending: List[str] = []
    for k, trace in enumerate(items):
        if trace.after == trace.before:
            pending.append(f"{k + 1}. {_pass_title(trace)}: no change")
            continue
        n = _rewrites(trace)
        pending.append(f"{k + 1}. {_pass_title(trace)} ⟶\n{n} rewrite{'' if n == 1 else 's'}")
        frames.append((trace.after, trace, pending))
        pending = []
    if pending:  # passes after the last change: a label after the last frame
        frames.append((None, None, pending))  # type: ignore[arg-type]
    return frames


def _frame(j: int, diagram: Diagram, trace: Any, sizes: bool) -> List[str]:
    opts = _frame_options(trace, sizes)
    prefix = f"f{j}/"
    lines = [f"subgraph {_quote('cluster_' + prefix)} {{",
             f'  label={_quote(f"D{j}: " + result_text(diagram, opts))}; style="rounded"; '
             'color="#bbbbbb"; labelloc=b;']
    lines += ["  " + ln for ln in diagram_lines(diagram, prefix, opts)]
    lines.append("}")
    return lines


def _arrow(j: int, text: List[str], before: List[str], after: List[str]) -> List[str]:
    node = f"a{j}:arrow"
    lines = [f"{_quote(node)} [shape=plaintext, fontsize=13, label={_quote(chr(10).join(text))}];"]
    lines += [f"{_quote(a)} -- {_quote(node)} [style=invis, weight=5];" for a in before]
    lines += [f"{_quote(node)} -- {_quote(b)} [style=invis, weight=5];"
              for b in dict.fromkeys(after)]
    return lines


def trace_to_dot(traces: Any, *, sizes: bool = False, name: str = "trace") -> str:
    """DOT text of a pipeline's traces: one row of frames ``D0 → D1 → ...``.

    Args:
        traces: a :class:`~tndiag.passes.PipelineResult`, a ``Trace`` or a list of them.
        sizes: label legs with their sizes too.
        name: the DOT graph's name.

    Returns:
        Deterministic DOT source: each diagram drawn once, arrows labelled with the pass
        and its rewrite count, passes that changed nothing folded into the arrow labels.

    Raises:
        InvalidArgumentError: when ``traces`` holds no trace.

    >>> from tndiag import ops, run_pipeline
    >>> text = trace_to_dot(run_pipeline(ops.conv(ndim=1), "vjp{wrt=W,vector=V},identity"))
    >>> "1. vjp{wrt=W,vector=V}" in text, "2. identity: no change" in text
    (True, True)
    """
    items: Tuple[Any, ...] = as_traces(traces)
    if not items:
        raise InvalidArgumentError("the pipeline has no traces to draw")
    lines = _header(name, "")
    previous: List[str] = []
    for j, (diagram, trace, text) in enumerate(_frames(items)):
        if diagram is None:
            lines += ["  " + ln for ln in _arrow(j, text, previous, [])]
            break
        if text:
            lines += ["  " + ln for ln in _arrow(j, text, previous, _firsts(diagram, f"f{j}/"))]
        lines += ["  " + ln for ln in _frame(j, diagram, trace, sizes)]
        previous = _lasts(diagram, f"f{j}/")
    lines.append("}")
    return "\n".join(lines) + "\n"
