"""The ``patch-gram`` step (KFC's input factor) along each route, against oracles in float64.

Every route is forced (``compile(..., route=...)``) and checked against KFC from its
definition — the input unfolded by a torch convolution with identity weights, then
``U Uᵀ / N`` per group — and against the dense evaluator (``lowerings=()``), on the grid of
``test_routes.py`` (N = 1, 2, 3, stride, 'same' and asymmetric padding, dilation, groups,
depthwise), extra cases (several phases, dilation larger than the stride, 1×1, S ≥ K·D) and
hypothesis-drawn configurations; the exported module runs the same kernel along the same
route. ``batched`` is offered exactly where the patches are the input (1×1, stride 1, no padding). A
transposed convolution's KFC is not a ``patch-gram`` step: no route is offered.
"""

import builtins
import math

import pytest
import torch
from diagram_checks import assert_close, conv_cases, torch_conv
from hypothesis import given, settings
from test_routes import GRID, _double, _hyper

import tndiag
from tndiag import InvalidArgumentError, ops
from tndiag.backends.torch_export import EMITTERS
from tndiag.backends.torch_native import PREPARERS
from tndiag.codegen.export import export
from tndiag.codegen.program import StepKind
from tndiag.codegen.routes import ROUTES, steps_of

PATCH_ROUTES = tuple(name for name, _ in ROUTES[StepKind.PATCH_GRAM])


def reference_kfc(x, case):
    """``1/N Σ_{n,l} u uᵀ`` per group, ``u`` the columns of the unfolded input."""
    C, K, G, N = x.shape[1], case["w_shape"][2:], case["groups"], x.shape[0]
    taps = math.prod(K)
    eye = torch.eye(C * taps, dtype=x.dtype).reshape(C * taps, C, *K)
    U = torch_conv(dict(case, groups=1, w_shape=tuple(eye.shape)))(x, eye).flatten(2)
    U = U.reshape(N, G, -1, U.shape[-1])
    return torch.einsum("ngil,ngjl->gij", U, U) / N


def _diagram(case):
    kw = {k: v for k, v in _hyper(case).items() if k != "output_padding"}
    return ops.kfc(case["x_shape"], case["w_shape"][2:], **kw)


def _tuple(value):
    return (value,) if isinstance(value, int) else tuple(value)


def _unpadded(case):
    """Whether ``case`` pads nothing (1×1 kernels: 'same' pads nothing)."""
    padding = case["padding"]
    if isinstance(padding, str):
        return True
    flat = [padding] if isinstance(padding, int) else [
        v for p in padding for v in ((p,) if isinstance(p, int) else p)]
    return all(v == 0 for v in flat)


def _load(source):
    namespace: dict = {}
    exec(builtins.compile(source, "<exported>", "exec"), namespace)
    return namespace["forward"]


def check_patch_gram_routes(case, exported=False):
    """Each route of the KFC of ``case`` equals the oracle and the dense evaluator."""
    x = _double(case["x_shape"])
    diagram = _diagram(case)
    want = reference_kfc(x, case)
    dense = tndiag.compile(diagram, lowerings=())(x)
    assert_close(dense, want, "dense KFC")
    (chosen,) = [s for s in steps_of(tndiag.compile(diagram)) if s.kind is StepKind.PATCH_GRAM]
    one_by_one = all(k == 1 for k in case["w_shape"][2:]) and all(
        s == 1 for s in _tuple(case["stride"])) and _unpadded(case)
    assert chosen.routes == PATCH_ROUTES[:2] + (("batched",) if one_by_one else ())
    for route in chosen.routes:
        program = tndiag.compile(diagram, route=route)
        (step,) = [s for s in steps_of(program) if s.kind is StepKind.PATCH_GRAM]
        assert step.route == route
        got = program(x)
        assert_close(got, want, f"KFC along {route}")
        torch.testing.assert_close(got, dense, rtol=1e-10, atol=1e-10)
        if exported:
            source = export(program)
            runner = PREPARERS[step.kind](step)
            kernel, recipe = EMITTERS[step.kind](step)
            assert (kernel, recipe) == (runner.func, runner.args[0])
            assert f"{kernel.__name__}(_R" in source.split("# the plan")[1]
            torch.testing.assert_close(_load(source)(x), got, rtol=1e-12, atol=1e-12)


EXTRA = {
    "2d-phases-dilated": dict(transposed=False, x_shape=(2, 4, 11, 10), w_shape=(1, 2, 5, 3),
                              stride=(3, 2), padding=((2, 1), (0, 3)), dilation=(2, 1),
                              groups=2),
    "2d-same-dilation-over-stride": dict(transposed=False, x_shape=(1, 3, 12, 9),
                                    w_shape=(1, 3, 3, 4), stride=(1, 1), padding="same",
                                    dilation=(3, 1), groups=1),
    "2d-one-by-one-strided": dict(transposed=False, x_shape=(2, 4, 7, 6), w_shape=(1, 4, 1, 1),
                                  stride=(2, 3), padding=0, dilation=(1, 1), groups=1),
    "2d-one-by-one": dict(transposed=False, x_shape=(3, 4, 5, 6), w_shape=(1, 2, 1, 1),
                          stride=(1, 1), padding=0, dilation=(1, 2), groups=2),
    "2d-patchify": dict(transposed=False, x_shape=(1, 2, 8, 12), w_shape=(1, 2, 4, 4),
                        stride=(4, 4), padding=0, dilation=(1, 1), groups=1),
    "1d-long-depthwise": dict(transposed=False, x_shape=(3, 4, 30), w_shape=(4, 1, 7),
                              stride=(1,), padding=((3, 2),), dilation=(1,), groups=4),
    "3d-cube": dict(transposed=False, x_shape=(2, 2, 6, 5, 7), w_shape=(1, 2, 3, 3, 2),
                    stride=(1, 2, 1), padding=(1, 1, 0), dilation=(1, 1, 2), groups=1),
}

CASES = {**{n: c for n, c in GRID.items() if not c["transposed"]}, **EXTRA}


@pytest.mark.parametrize("name", list(CASES))
def test_patch_gram_routes_grid(name):
    check_patch_gram_routes(CASES[name], exported=name in ("2d-depthwise-strided", "3d-cube",
                                                           "2d-one-by-one"))


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(max_ndim=3, max_batch=3))
def test_patch_gram_routes_hypothesis(case):
    check_patch_gram_routes(case)


@settings(max_examples=8, deadline=None)
@given(case=conv_cases(max_ndim=2))
def test_patch_gram_routes_export_hypothesis(case):
    check_patch_gram_routes(case, exported=True)


@pytest.mark.parametrize("name", [n for n, c in GRID.items() if c["transposed"]])
def test_transposed_kfc_offers_no_patch_gram_route(name):
    """Its patterns hold X's legs on their ``o`` legs: the ``gram`` rule's program, which
    equals the dense evaluator; forcing a patch-gram route is refused."""
    case = GRID[name]
    x = _double(case["x_shape"])
    diagram = ops.kfc(x.shape, case["w_shape"][2:], transposed=True, **_hyper(case))
    program = tndiag.compile(diagram)
    assert StepKind.PATCH_GRAM not in {s.kind for s in steps_of(program)}
    torch.testing.assert_close(program(x), tndiag.compile(diagram, lowerings=())(x),
                               rtol=1e-10, atol=1e-10)
    with pytest.raises(InvalidArgumentError, match="shifted"):
        tndiag.compile(diagram, route="shifted")


def test_measured_route_is_one_of_the_routes(tmp_path, monkeypatch):
    """``tune=True``: the backend times both routes on the first run, keeps the winner."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    case = EXTRA["2d-phases-dilated"]
    x = _double(case["x_shape"])
    program = tndiag.compile(_diagram(case), tune=True)
    (step,) = program.steps
    assert step.tune and step.routes == ("unfold", "shifted")
    assert_close(program(x), reference_kfc(x, case), "tuned KFC")
    assert "measured (" in str(program)


def test_functional_kfc_matches_the_unfold_oracle():
    """``tndiag.functional.kfc`` on a layer whose model picks ``shifted``, in float64."""
    from tndiag.functional import kfc

    case = dict(transposed=False, x_shape=(2, 32, 40, 40), w_shape=(1, 32, 3, 3), stride=(1, 1),
                padding=1, dilation=(1, 1), groups=1)
    (step,) = tndiag.compile(_diagram(case)).steps
    assert step.route == "shifted"
    x = _double(case["x_shape"])
    assert_close(kfc(x, 3, padding=1), reference_kfc(x, case), "functional KFC")
