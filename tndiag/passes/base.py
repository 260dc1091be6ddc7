"""Pass infrastructure: the registry, traces of what a pass did, and pipelines as text.

A pass is a pure function ``fn(diagram, rec, **options) -> diagram`` registered under a
kebab-case name with :func:`register`. ``rec`` is a :class:`Recorder`: the pass reports each
rule that fired (with the tensors and indices involved) and each rule that could not fire
(with the reason, e.g. an undecidable symbolic precondition). Users call the returned
:class:`Pass` like a function (``simplify(g)``) or ask for the trace (``simplify.traced(g)``).

>>> from tndiag.passes.base import PASSES
>>> "identity" in PASSES
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Tuple

from tndiag.errors import InvalidArgumentError, PassError, TndiagError, UnknownNameError
from tndiag.ir import Diagram, Graph, Sum, Tensor, verify

__all__ = ["Event", "Trace", "Recorder", "Pass", "PASSES", "register", "parse_pipeline",
           "run_pipeline", "PipelineResult", "map_terms", "fresh_name", "index_names"]


@dataclass(frozen=True)
class Event:
    """One thing a pass did (``fired``) or could not do (``skipped``)."""

    status: str
    rule: str
    detail: str = ""
    tensors: Tuple[str, ...] = ()
    indices: Tuple[str, ...] = ()

    def __str__(self) -> str:
        where = []
        if self.tensors:
            where.append("tensors " + ", ".join(self.tensors))
        if self.indices:
            where.append("indices " + ", ".join(self.indices))
        loc = f" [{'; '.join(where)}]" if where else ""
        return f"{self.status:<7} {self.rule}{loc}{': ' + self.detail if self.detail else ''}"


class Recorder:
    """Collects the events of one pass run."""

    def __init__(self) -> None:
        self.events: List[Event] = []

    def fired(self, rule: str, detail: str = "", tensors=(), indices=()) -> None:
        """Record that ``rule`` rewrote the diagram."""
        self.events.append(Event("fired", rule, detail, tuple(tensors), tuple(indices)))

    def skipped(self, rule: str, reason: str, tensors=(), indices=()) -> None:
        """Record that ``rule`` could not fire and why."""
        self.events.append(Event("skipped", rule, reason, tuple(tensors), tuple(indices)))


@dataclass(frozen=True)
class Trace:
    """What one pass did: its name and options, the events, and the diagrams around it."""

    pass_name: str
    options: Tuple[Tuple[str, Any], ...]
    events: Tuple[Event, ...]
    before: Diagram
    after: Diagram

    @property
    def fired(self) -> Tuple[Event, ...]:
        """The events of rules that fired."""
        return tuple(e for e in self.events if e.status == "fired")

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        head = f"pass {self.pass_name}{'{' + opts + '}' if opts else ''}: "
        unchanged = "" if self.before != self.after else ", unchanged"
        head += f"{len(self.fired)} rewrite(s){unchanged}"
        return "\n".join([head, *("  " + str(e) for e in self.events)])


@dataclass(frozen=True)
class Pass:
    """A registered pass: call it for the result, or use :meth:`traced` for the trace too."""

    name: str
    fn: Callable[..., Diagram]
    options: Tuple[Tuple[str, type], ...] = ()
    doc: str = ""

    def __call__(self, diagram: Diagram, *args: Any, **options: Any) -> Diagram:
        """Run the pass; options may be given positionally in their declared order."""
        return self.traced(diagram, *args, **options)[0]

    def traced(self, diagram: Diagram, *args: Any, **options: Any) -> Tuple[Diagram, Trace]:
        """Run the pass; return the new diagram and its :class:`Trace`."""
        _check_diagram(diagram, f"pass {self.name!r}")
        options = self._bind(args, options)
        rec = Recorder()
        result = self.fn(diagram, rec, **options)
        trace = Trace(self.name, tuple(sorted(options.items())), tuple(rec.events), diagram,
                      result)
        return result, trace

    def _bind(self, args: Tuple[Any, ...], options: Dict[str, Any]) -> Dict[str, Any]:
        """Options by name: positional ones in declared order, text lists split at ``|``."""
        known = dict(self.options)
        if len(args) > len(self.options):
            raise PassError(f"pass {self.name!r} takes at most {len(self.options)} option(s) "
                            f"{[k for k, _ in self.options]}, got {len(args)} positional")
        for (key, _), value in zip(self.options, args):
            if key in options:
                raise PassError(f"option {key!r} of pass {self.name!r} given twice")
            options[key] = value
        for key in options:
            if key not in known:
                raise PassError(f"pass {self.name!r} has no option {key!r}; "
                                f"expected one of {sorted(known) or 'none'}")
            if known[key] is tuple and isinstance(options[key], str):
                options[key] = _convert(self.name, key, options[key], tuple)
            elif known[key] is tuple and not isinstance(options[key], (tuple, list, Tensor)):
                raise InvalidArgumentError(
                    f"option {key!r} of pass {self.name!r} must be text ('a|b'), a tensor or "
                    f"a sequence, got {options[key]!r}")
        return options


def _check_diagram(diagram: object, what: str) -> None:
    if not isinstance(diagram, (Graph, Sum)):
        raise InvalidArgumentError(f"{what} expects a diagram (a Graph or Sum), got "
                                   f"{type(diagram).__name__}")


#: name -> Pass. Every pass module registers itself on import (see tndiag/passes/__init__.py).
PASSES: Dict[str, Pass] = {}


def register(name: str, **options: type) -> Callable[[Callable[..., Diagram]], Pass]:
    """Register ``fn(diagram, rec, **options)`` as the pass ``name`` (kebab-case).

    ``options`` maps option names to their types (``str``, ``int``, ``float``, ``bool``,
    ``tuple`` for comma-free lists written ``a|b``); pipeline text is converted with them.
    """
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise ValueError(f"pass names are kebab-case, got {name!r}")

    def decorate(fn: Callable[..., Diagram]) -> Pass:
        p = Pass(name, fn, tuple(options.items()), (fn.__doc__ or "").strip())
        PASSES[name] = p
        return p

    return decorate


@register("identity")
def _identity(diagram: Diagram, rec: Recorder) -> Diagram:
    """Returns the diagram unchanged (useful in tests and as a pipeline placeholder)."""
    return diagram


def map_terms(diagram: Diagram, fn: Callable[[Graph], Diagram]) -> Diagram:
    """Apply a Graph-level rewrite to a graph or to every term of a sum (flattening sums)."""
    if isinstance(diagram, Graph):
        return fn(diagram)
    terms: List[Graph] = []
    for term in diagram.terms:
        out = fn(term)
        terms.extend(out.terms if isinstance(out, Sum) else (out,))
    return Sum(tuple(terms)) if len(terms) > 1 else terms[0]


def index_names(diagram: Diagram) -> set:
    """Every index name used in a graph or in any term of a sum."""
    terms = diagram.terms if isinstance(diagram, Sum) else (diagram,)
    return {name for term in terms for name in term.indices()}


def fresh_name(base: str, used) -> str:
    """``base`` if unused, else ``base_2``, ``base_3``, ... (the first name not in ``used``).

    >>> fresh_name("g", {"g", "g_2"})
    'g_3'
    """
    if base not in used:
        return base
    n = 2
    while f"{base}_{n}" in used:
        n += 1
    return f"{base}_{n}"


_STEP = re.compile(r"\s*([a-z][a-z0-9-]*)\s*(\{([^{}]*)\})?\s*(,|$)")


def _convert(pass_name: str, key: str, value: str, kind: type) -> Any:
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if kind is tuple:
            return tuple(v.strip() for v in value.split("|") if v.strip())
        return kind(value)
    except ValueError:
        raise PassError(f"option {key!r} of pass {pass_name!r} expects a {kind.__name__}, "
                        f"got {value!r}") from None


def parse_pipeline(text: str) -> List[Tuple[str, Dict[str, Any]]]:
    """Parse ``"name{opt=value,...},name2"`` into ``[(name, options), ...]``.

    >>> parse_pipeline("identity,identity")
    [('identity', {}), ('identity', {})]
    """
    steps: List[Tuple[str, Dict[str, Any]]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m or m.end() == pos:
            raise PassError(f"cannot parse pipeline {text!r} at position {pos}: expected "
                            "name or name{option=value,...}, separated by commas")
        name, body = m.group(1), m.group(3)
        if name not in PASSES:
            raise UnknownNameError(f"unknown pass {name!r} in pipeline; expected one of "
                                   f"{sorted(PASSES)}")
        known = dict(PASSES[name].options)
        opts: Dict[str, Any] = {}
        for item in (body.split(",") if body and body.strip() else []):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key:
                raise PassError(f"option {item.strip()!r} of pass {name!r} must be key=value")
            if key not in known:
                raise PassError(f"pass {name!r} has no option {key!r}; expected one of "
                                f"{sorted(known) or 'none'}")
            opts[key] = _convert(name, key, value.strip(), known[key])
        steps.append((name, opts))
        pos = m.end()
    if not steps:
        raise PassError("empty pipeline: expected at least one pass name")
    return steps


@dataclass(frozen=True)
class PipelineResult:
    """The final diagram of a pipeline and the trace of each pass."""

    diagram: Diagram
    traces: Tuple[Trace, ...] = field(default=())

    def __str__(self) -> str:
        return "\n".join(str(t) for t in self.traces)


def _steps(pipeline: object) -> List[Tuple[str, Mapping[str, Any]]]:
    """A pipeline given as a sequence: pass texts (``"simplify"``) or ``(name, options)``."""
    if not isinstance(pipeline, (list, tuple)):
        raise InvalidArgumentError(f"pipeline must be text or a list of steps, got "
                                   f"{type(pipeline).__name__}")
    steps: List[Tuple[str, Mapping[str, Any]]] = []
    for step in pipeline:
        if isinstance(step, str):
            steps.extend(parse_pipeline(step))
        elif (isinstance(step, (list, tuple)) and len(step) == 2 and isinstance(step[0], str)
              and isinstance(step[1], Mapping)):
            steps.append((step[0], step[1]))
        else:
            raise InvalidArgumentError(f"pipeline step must be pass text or a (name, options) "
                                       f"pair, got {step!r}")
    return steps


def run_pipeline(diagram: Diagram, pipeline: str | List[Tuple[str, Mapping[str, Any]]]
                 ) -> PipelineResult:
    """Run passes in order, checking ``verify()`` after each and naming the pass that broke it.

    ``pipeline`` is text (``"simplify,canonicalize"``) or a list whose items are pass texts
    or ``(name, options)`` pairs.

    >>> from tndiag import ops
    >>> res = run_pipeline(ops.conv(ndim=1), "identity")
    >>> res.diagram == ops.conv(ndim=1)
    True
    """
    _check_diagram(diagram, "run_pipeline")
    steps = parse_pipeline(pipeline) if isinstance(pipeline, str) else _steps(pipeline)
    verify(diagram)
    traces = []
    for name, opts in steps:
        if name not in PASSES:
            raise UnknownNameError(f"unknown pass {name!r}; expected one of {sorted(PASSES)}")
        diagram, trace = PASSES[name].traced(diagram, **dict(opts))
        try:
            verify(diagram)
        except TndiagError as err:
            raise PassError(f"pass {name!r} broke an invariant: {err}") from err
        traces.append(trace)
    return PipelineResult(diagram, tuple(traces))
