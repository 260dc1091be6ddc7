"""``memory_limit`` never changes the value: random diagrams compiled with a budget of half
their modelled float64 peak equal the dense oracle (when slicing cannot meet the budget, the
program warns and runs whole)."""

import warnings

from diagram_checks import inputs_for as random_inputs
from hypothesis import event, given
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, diagrams

import tndiag
from tndiag.errors import TndiagError


@oracle_settings()
@given(diagrams())
def test_memory_limit_keeps_the_value(diagram):
    inputs = random_inputs(diagram)
    want = dense_value(diagram, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            whole = tndiag.compile(diagram)
            limit = max(8, 8 * int(_peak(whole)) // 2)
            program = tndiag.compile(diagram, memory_limit=limit)
        except TndiagError as err:  # a clear refusal is allowed, never a wrong number
            assert "memory_limit" in str(err)
            return
        event(type(program).__name__)
        got = program(**{name: inputs[name] for name in program.inputs})
    assert_matches_oracle(got, want, f"memory_limit={limit}\n{program}")


def _peak(program):
    """Modelled peak in elements (a sum program: its largest term)."""
    if hasattr(program, "peak_memory"):
        return program.peak_memory
    return max(_peak(term) for term in program.terms)
