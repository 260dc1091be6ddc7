"""The plan cache: an equal diagram compiles by dictionary lookup, also after renaming."""

from tndiag import compile, ops
from tndiag.codegen import cache_info, clear_cache


def test_second_compile_is_a_lookup_returning_the_same_program():
    clear_cache()
    a = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    b = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    assert a is b
    assert cache_info()["hits"] == 1 and cache_info()["misses"] == 1


def test_sizes_substitution_hits_the_same_entry():
    clear_cache()
    a = compile(ops.conv(ndim=1), {"N": 2, "C_in": 3, "C_out": 4, "I1": 8, "K1": 3})
    b = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    assert a is b or cache_info()["canonical_hits"] == 1


def test_renamed_indices_share_the_canonical_plan():
    clear_cache()
    g = ops.conv((2, 3, 8), (4, 3, 3))
    a = compile(g)
    b = compile(g.rename_indices({"ci": "c", "k1": "t"}))
    assert b is a
    assert cache_info()["canonical_hits"] == 1


def test_different_sizes_or_lowerings_are_different_plans():
    clear_cache()
    a = compile(ops.conv((2, 3, 8), (4, 3, 3)))
    assert compile(ops.conv((2, 3, 9), (4, 3, 3))) is not a
    assert compile(ops.conv((2, 3, 8), (4, 3, 3)), lowerings=()) is not a
    assert cache_info()["misses"] == 3
