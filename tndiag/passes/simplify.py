"""The simplification engine: rules as data, applied by one loop to a fixpoint.

A :class:`Rule` is ``(name, sites, precondition, rewrite)``: ``sites(graph)`` lists where it
might apply (a :class:`Site`: tensor positions and index names), ``precondition(graph, site)``
answers with a :class:`Verdict` (fire / does not apply / cannot decide with symbolic sizes,
with a reason), and ``rewrite(graph, site)`` returns the new graph. :func:`rewrite_to_fixpoint`
is the one loop: it fires the first applicable rule, records it, and starts over until no
rule applies. Rules whose precondition is undecidable do not fire; the trace says why.

Rule modules (``tndiag/passes/rules/``) add their rules to :data:`RULES` with
:func:`add_rule` and register each as a pass of its own with :func:`rule_pass`. The
``simplify`` pass runs the rules named in :data:`SIMPLIFY_ORDER` together.

>>> from tndiag.ir import Graph, Index, pattern, variable
>>> i, o, k = Index("i", 6), Index("o", 4), Index("k", 3)
>>> g, trace = simplify.traced(Graph.of([variable("X", [i]), pattern("P", i, o, k)], [k]))
>>> [t.kind.value for t in g.tensors]
['variable', 'reduced']
>>> print(trace.events[0])
fired   sum-out [tensors P; indices o]: o leg 'o' touches nothing else: Π becomes Σ_o Π
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Sequence, Set, Tuple

from tndiag.errors import PassError
from tndiag.ir import Diagram, Graph, Sum
from tndiag.passes.base import Pass, Recorder, register

__all__ = ["Verdict", "Site", "Rule", "RULES", "SIMPLIFY_ORDER", "add_rule", "rule_pass",
           "rewrite_to_fixpoint", "simplify_diagram", "simplify"]


@dataclass(frozen=True)
class Verdict:
    """A precondition's answer: ``ok`` is True (fire), False (does not apply) or None
    (undecidable with symbolic sizes); ``reason`` says why (the trace shows it)."""

    ok: bool | None
    reason: str = ""

    @staticmethod
    def yes(reason: str = "") -> "Verdict":
        """The rule applies."""
        return Verdict(True, reason)

    @staticmethod
    def no(reason: str = "") -> "Verdict":
        """The rule does not apply."""
        return Verdict(False, reason)

    @staticmethod
    def unknown(reason: str) -> "Verdict":
        """The precondition cannot be decided (symbolic sizes)."""
        return Verdict(None, reason)


@dataclass(frozen=True)
class Site:
    """Where a rule may apply: positions in ``graph.tensors`` and index names."""

    tensors: Tuple[int, ...] = ()
    indices: Tuple[str, ...] = ()

    def key(self, graph: Graph) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
        """A position-free description (tensor names, index names) used in traces."""
        return tuple(graph.tensors[p].name for p in self.tensors), self.indices


@dataclass(frozen=True)
class Rule:
    """A simplification rule as data; see the module docstring."""

    name: str
    sites: Callable[[Graph], Iterable[Site]]
    precondition: Callable[[Graph, Site], Verdict]
    rewrite: Callable[[Graph, Site], Graph]
    doc: str = ""


#: rule name -> Rule; filled by the rule modules in ``tndiag/passes/rules/``.
RULES: Dict[str, Rule] = {}

#: The rules ``simplify`` runs, in priority order (the loop restarts from the first one
#: after every rewrite). Dense and down-sampling come before sum-out: a dense Π with a free
#: o leg then disappears entirely (a reshape and a sum) instead of becoming Σ_o Π.
SIMPLIFY_ORDER = ("delta-duplicate", "delta-rename", "delta-trace", "dense", "down-sampling",
                  "sum-out", "squeeze", "merge-parallel-legs")


def add_rule(rule: Rule) -> Rule:
    """Add ``rule`` to :data:`RULES` (by its name) and return it."""
    RULES[rule.name] = rule
    return rule


_MAX_REWRITES = 10_000


class _Run:
    """Book-keeping of one fixpoint run: skips already reported, rewrites refused."""

    def __init__(self, rec: Recorder, keep_output: bool) -> None:
        self.rec = rec
        self.keep_output = keep_output
        self.reported: Set[tuple] = set()
        self.blocked: Set[tuple] = set()

    def skip(self, rule: Rule, key: tuple, reason: str) -> None:
        if (rule.name, key) not in self.reported:
            self.reported.add((rule.name, key))
            self.rec.skipped(rule.name, reason, tensors=key[0], indices=key[1])

    def refusal(self, old: Graph, new: Graph) -> str:
        """Why a rewrite must be refused inside a sum ('' when it may stand)."""
        if self.keep_output and new.output != old.output:
            return "it would change the output legs, which every term of the sum shares"
        return ""

    def step(self, graph: Graph, rules: Sequence[Rule]) -> Graph | None:
        """Fire the first applicable rule at its first site; None when none applies."""
        for rule in rules:
            for site in rule.sites(graph):
                key = site.key(graph)
                if (rule.name, key) in self.blocked:
                    continue
                verdict = rule.precondition(graph, site)
                if verdict.ok is None:
                    self.skip(rule, key, verdict.reason)
                if not verdict.ok:
                    continue
                new = rule.rewrite(graph, site)
                refusal = self.refusal(graph, new)
                if refusal:
                    self.blocked.add((rule.name, key))
                    self.skip(rule, key, refusal)
                    continue
                self.rec.fired(rule.name, verdict.reason, tensors=key[0], indices=key[1])
                return new
        return None


def rewrite_to_fixpoint(graph: Graph, rules: Sequence[Rule], rec: Recorder,
                        keep_output: bool = False) -> Graph:
    """Apply ``rules`` to ``graph`` until none applies, recording each rewrite in ``rec``.

    Args:
        graph: the graph to simplify.
        rules: the rules, in priority order.
        rec: receives a ``fired`` event per rewrite and a ``skipped`` event per rule and site
            whose precondition could not be decided.
        keep_output: refuse rewrites that change the output legs (terms of a sum share them).

    Returns:
        The simplified graph.

    Raises:
        PassError: if the rules do not reach a fixpoint (a bug in a rule).

    >>> from tndiag import ops
    >>> rec = Recorder()
    >>> g = rewrite_to_fixpoint(ops.conv((1, 2, 8), (3, 2, 4), stride=4), [RULES["dense"]], rec)
    >>> [(e.status, e.rule, e.tensors) for e in rec.events]
    [('fired', 'dense', ('P1',))]
    """
    run = _Run(rec, keep_output)
    for _ in range(_MAX_REWRITES):
        new = run.step(graph, rules)
        if new is None:
            return graph
        graph = new
    raise PassError(f"rules {[r.name for r in rules]} did not reach a fixpoint after "
                    f"{_MAX_REWRITES} rewrites")


def simplify_diagram(diagram: Diagram, rules: Sequence[Rule], rec: Recorder) -> Diagram:
    """Apply ``rules`` to a graph, or to each term of a sum (whose terms keep their common
    output legs, as :func:`~tndiag.ir.verify` requires)."""
    if isinstance(diagram, Graph):
        return rewrite_to_fixpoint(diagram, rules, rec)
    terms = [rewrite_to_fixpoint(t, rules, rec, keep_output=True) for t in diagram.terms]
    return Sum(tuple(terms))


def rule_pass(name: str, rule_names: Sequence[str], doc: str) -> Pass:
    """Register a pass ``name`` that runs the rules ``rule_names`` (looked up in
    :data:`RULES` when the pass runs) to a fixpoint.

    >>> from tndiag.passes.base import PASSES
    >>> PASSES["mixed-dense"].name, PASSES["mixed-dense"].fn.__name__
    ('mixed-dense', 'mixed_dense')
    """
    def run(diagram: Diagram, rec: Recorder) -> Diagram:
        missing = [r for r in rule_names if r not in RULES]
        if missing:
            raise PassError(f"pass {name!r} needs rule(s) {missing}, which are not loaded; "
                            "import tndiag.passes")
        return simplify_diagram(diagram, [RULES[r] for r in rule_names], rec)

    run.__doc__ = doc
    run.__name__ = name.replace("-", "_")
    return register(name)(run)


simplify = rule_pass("simplify", SIMPLIFY_ORDER, """Run every simplification rule to a
fixpoint: δ pruning, dense, down-sampling, sum-out, squeeze, merge parallel legs
(docs/method.md §4). Mixed-dense convolutions are covered: the rules act per spatial dimension.""")
