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

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Tuple

from tndiag.errors import InvalidArgumentError, PassError, TndiagError, UnknownNameError
from tndiag.ir import Diagram, Graph, Sum, Tensor, verify

__all__ = ["Event", "Trace", "Recorder", "Pass", "PASSES", "register", "parse_pipeline",
           "run_pipeline", "PipelineResult", "map_terms", "fresh_name", "index_names", "SIZE",
           "option_text"]


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
        head = f"pass {self.pass_name}{option_text(self.options)}: "
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
        declared = tuple((k, options[k]) for k, _ in self.options if k in options)
        trace = Trace(self.name, declared, tuple(rec.events), diagram, result)
        return result, trace

    def _bind(self, args: Tuple[Any, ...], options: Dict[str, Any]) -> Dict[str, Any]:
        """Options by name: positional ones in declared order, text lists split at ``|``."""
        known = dict(self.options)
        if len(args) > len(self.options):
            raise PassError(f"pass {self.name!r} takes at most {len(self.options)} option(s) "
                            f"{[k for k, _ in self.options]}, got {len(args)} positional")
        for (key, _), value in zip(self.options, args, strict=False):
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
            elif known[key] is SizeOption and isinstance(options[key], str):
                options[key] = _check_size(self.name, key, options[key])
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
    ``tuple`` for comma-free lists written ``a|b``, :data:`SIZE` for sizes); pipeline text
    is converted and checked with them when the pipeline is parsed.
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


class SizeOption:
    """Option kind of a size: a positive integer or a size symbol (``groups=4``, ``groups=G``).

    Size symbols start with a capital letter, as the builders' symbols do (``N``, ``C_in``,
    ``I1``), so that a misspelt number such as ``groups=two`` is an error, not a new symbol.
    """


#: Use as an option type: ``register("expand-groups", groups=SIZE, ...)``.
SIZE = SizeOption


def _check_size(pass_name: str, key: str, value: Any) -> Any:
    """A positive int or a capitalised symbol name; else a :class:`PassError` naming ``key``."""
    given = value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and re.fullmatch(r"[A-Z]\w*", value.strip()):
        return value.strip()
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return value  # sympy expressions and other sizes: the pass checks them
    raise PassError(f"option {key!r} of pass {pass_name!r} expects a positive integer or a "
                    f"size symbol starting with a capital letter (e.g. G), got {given!r}")


def _convert(pass_name: str, key: str, value: str, kind: type) -> Any:
    if kind is SizeOption:
        return _check_size(pass_name, key, value)
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if kind is tuple:
            return tuple(v.strip() for v in value.split("|") if v.strip())
        return kind(value)
    except ValueError:
        raise PassError(f"option {key!r} of pass {pass_name!r} expects "
                        f"{_kind_text(kind)}, got {value!r}") from None


def _kind_text(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a name",
            tuple: "names separated by '|'", SizeOption: "a positive integer or a size symbol"
            }.get(kind, f"a {kind.__name__}")


def option_text(options: Any) -> str:
    """Options as pipeline text writes them: ``{wrt=W,vector=V}``, lists as ``a|b``.

    >>> option_text((("wrt", ("X", "W")), ("vector", "V"))), option_text(())
    ('{wrt=X|W,vector=V}', '')
    """
    items = options.items() if isinstance(options, Mapping) else options
    parts = [f"{k}={'|'.join(map(str, v)) if isinstance(v, (tuple, list)) else v}"
             for k, v in items]
    return "{" + ",".join(parts) + "}" if parts else ""


class _Cursor:
    """Reads pipeline text left to right; errors quote the text with a caret."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def error(self, message: str, pos: int | None = None) -> PassError:
        at = self.pos if pos is None else pos
        return PassError(f"pipeline position {at + 1}: {message}\n  {self.text}\n"
                         f"  {' ' * at}^")

    def take(self, pattern: str) -> str | None:
        self.skip()
        m = re.compile(pattern).match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group(0)


def _pass_at(cur: _Cursor) -> Tuple[str, int]:
    cur.skip()
    start = cur.pos
    name = cur.take(r"[A-Za-z_][\w-]*")
    if name is None:
        raise cur.error("expected a pass name (name or name{option=value,...}, separated by "
                        "commas)")
    if name not in PASSES:
        close = difflib.get_close_matches(name, list(PASSES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownNameError(f"unknown pass {name!r} at pipeline position {start + 1}; "
                               f"{hint}known passes: {', '.join(map(repr, sorted(PASSES)))}")
    return name, start


def _options_at(cur: _Cursor, name: str) -> Dict[str, Any]:
    """``{key=value,...}`` after a pass name (the cursor is on ``{``)."""
    opening = cur.pos - 1
    end = cur.text.find("}", cur.pos)
    nested = cur.text.find("{", cur.pos)
    if end < 0 or 0 <= nested < end:
        raise cur.error(f"unclosed '{{' of pass {name!r}", opening)
    known = dict(PASSES[name].options)
    opts: Dict[str, Any] = {}
    body, offset = cur.text[cur.pos:end], cur.pos
    for item in body.split(",") if body.strip() else []:
        key, eq, value = item.partition("=")
        where = offset + len(item) - len(item.lstrip())
        offset += len(item) + 1
        key = key.strip()
        if not eq or not key:
            raise cur.error(f"option {item.strip()!r} of pass {name!r} must be key=value", where)
        if key not in known:
            raise cur.error(f"pass {name!r} has no option {key!r}; expected one of "
                            f"{sorted(known) or 'none'}", where)
        if key in opts:
            raise cur.error(f"option {key!r} of pass {name!r} given twice", where)
        opts[key] = _convert(name, key, value.strip(), known[key])
    cur.pos = end + 1
    return opts


def parse_pipeline(text: str) -> List[Tuple[str, Dict[str, Any]]]:
    """Parse ``"name{opt=value,...},name2"`` into ``[(name, options), ...]``.

    Option values are converted and checked here (a size must be a positive integer or a
    capitalised symbol), so a bad value fails before any pass runs.

    Raises:
        UnknownNameError: an unknown pass (with the closest known name).
        PassError: bad syntax or an option that does not exist or has a bad value; the
            message gives the position with a caret.

    >>> parse_pipeline("identity,expand-groups{groups=2,legs=ci|co}")
    [('identity', {}), ('expand-groups', {'groups': 2, 'legs': ('ci', 'co')})]
    """
    if not text.strip():
        raise PassError("empty pipeline: expected at least one pass name")
    cur = _Cursor(text)
    steps: List[Tuple[str, Dict[str, Any]]] = []
    while True:
        name, _ = _pass_at(cur)
        opts = _options_at(cur, name) if cur.take(r"\{") else {}
        steps.append((name, opts))
        if cur.take(r",") is None:
            break
    cur.skip()
    if cur.pos < len(cur.text):
        raise cur.error(f"unexpected {cur.text[cur.pos]!r} after pass {name!r}; separate "
                        "passes with commas")
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


def _in_pass(err: TndiagError, k: int, name: str) -> TndiagError:
    """The same kind of error, its message prefixed with ``pass k (name): ``."""
    try:
        return type(err)(f"pass {k} ({name}): {err}")
    except TypeError:  # an error class with a different constructor
        return PassError(f"pass {k} ({name}): {err}")


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
    for k, (name, opts) in enumerate(steps, start=1):
        if name not in PASSES:
            raise UnknownNameError(f"unknown pass {name!r}; expected one of {sorted(PASSES)}")
        try:
            diagram, trace = PASSES[name].traced(diagram, **dict(opts))
        except TndiagError as err:
            raise _in_pass(err, k, name) from err
        try:
            verify(diagram)
        except TndiagError as err:
            raise PassError(f"pass {k} ({name}) broke an invariant: {err}") from err
        traces.append(trace)
    return PipelineResult(diagram, tuple(traces))
