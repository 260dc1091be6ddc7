"""Pipeline text: option values are checked when parsed, and every error names its culprit."""

import re

import pytest

from tndiag import InvalidArgumentError, ops, run_pipeline
from tndiag.errors import PassError, UnknownNameError
from tndiag.passes.base import option_text, parse_pipeline


@pytest.mark.parametrize("value", ["-3", "0", "2.5", "two", "G+1", ""])
def test_bad_size_values_fail_at_parse_time_naming_the_option(value):
    with pytest.raises(PassError, match=f"option 'groups' of pass 'expand-groups' expects a "
                                        f"positive integer.*got {re.escape(repr(value))}"):
        parse_pipeline(f"expand-groups{{groups={value},legs=ci|co}}")
    with pytest.raises(PassError, match="option 'size' of pass 'expand-batch'"):
        parse_pipeline(f"identity,expand-batch{{size={value},tensors=X}}")


@pytest.mark.parametrize("value, parsed", [("4", 4), (" 12 ", 12), ("G", "G"), ("C_in", "C_in")])
def test_good_size_values(value, parsed):
    assert parse_pipeline(f"expand-groups{{groups={value},legs=ci|co}}") == [
        ("expand-groups", {"groups": parsed, "legs": ("ci", "co")})]


def test_bad_size_never_reaches_the_diagram():
    """Before: groups=-3 produced sizes like 5*-3; now nothing runs."""
    with pytest.raises(PassError, match="'groups'"):
        run_pipeline(ops.conv((2, 2, 7), (3, 2, 3)), "expand-groups{groups=-3,legs=ci|co}")


def test_unclosed_brace_points_at_the_brace():
    with pytest.raises(PassError, match=r"position 9: unclosed '\{' of pass 'identity'") as err:
        parse_pipeline("identity{,simplify")
    assert str(err.value).splitlines()[-1] == "          ^"  # two spaces, then column 9
    with pytest.raises(PassError, match=r"position 25: unclosed '\{' of pass 'vjp'"):
        parse_pipeline("differentiate{wrt=W},vjp{wrt=W,canonicalize{}")


@pytest.mark.parametrize("text, suggestion", [("simplfy", "simplify"), ("sum_out", "sum-out"),
                                              ("differentiat{wrt=W}", "differentiate")])
def test_unknown_pass_suggests_the_closest(text, suggestion):
    with pytest.raises(UnknownNameError, match=f"did you mean '{suggestion}'"):
        parse_pipeline("identity, " + text)


def test_unknown_pass_gives_its_position():
    with pytest.raises(UnknownNameError, match="unknown pass 'frob' at pipeline position 11"):
        parse_pipeline("identity, frob")


def test_option_errors_point_at_the_option():
    with pytest.raises(PassError, match=r"position 15: pass 'differentiate' has no option 'wrtt'"):
        parse_pipeline("differentiate{wrtt=W}")
    with pytest.raises(PassError, match=r"position 22: option 'wrt' of pass 'vjp' given twice"):
        parse_pipeline("vjp{wrt=W,vector=V,  wrt=X}")


def test_missing_comma_is_reported_where_it_is_missing():
    with pytest.raises(PassError, match=r"position 10: unexpected 's' after pass 'identity'"):
        parse_pipeline("identity simplify")
    with pytest.raises(PassError, match="position 10: expected a pass name"):
        parse_pipeline("identity,")


def test_failing_pass_is_named_with_its_number():
    g = ops.conv((2, 3, 5), (4, 3, 3))
    with pytest.raises(UnknownNameError, match=r"^pass 2 \(differentiate\): .*'Q'"):
        run_pipeline(g, "identity,differentiate{wrt=Q}")
    with pytest.raises(InvalidArgumentError, match=r"^pass 1 \(expand-batch\): .*only variables"):
        run_pipeline(g, "expand-batch{size=2,tensors=P1}")


def test_traces_print_options_in_pipeline_syntax():
    res = run_pipeline(ops.conv(ndim=1), "vjp{vector=V,wrt=W},differentiate{wrt=X|V}")
    assert str(res.traces[0]).startswith("pass vjp{wrt=W,vector=V}: ")
    assert str(res.traces[1]).startswith("pass differentiate{wrt=X|V}: ")
    assert option_text({"wrt": ("W",)}) == "{wrt=W}"
