"""Every route of a step, forced through ``compile(..., route=...)``, matches torch in float64.

Oracles: torch's convolution kernels for the forward (and transposed) convolution, autograd
for the input and weight VJPs, and the explicit unfolded input (``F.conv`` with an identity
kernel) for KFAC-reduce. Grids cover stride, asymmetric and 'same' padding, dilation, groups,
N = 1, 2, 3 and transposed convolutions; hypothesis draws more.
"""

import math

import pytest
import torch
from diagram_checks import assert_close, build_conv, conv_cases, torch_conv
from hypothesis import given, settings

import tndiag
from tndiag import ops
from tndiag.codegen.routes import routes_for, steps_of, with_route
from tndiag.errors import InvalidArgumentError

CONV_ROUTES = ("native", "gemm", "depth2d", "rows")
WINDOW_ROUTES = ("fused", "direct", "classes", "matmul", "kron")

GRID = {
    "1d-framing-k2s": dict(transposed=False, x_shape=(2, 1, 40), w_shape=(4, 1, 10),
                           stride=(5,), padding=0, dilation=(1,), groups=1),
    "1d-dilated-pairs": dict(transposed=False, x_shape=(1, 2, 11), w_shape=(3, 2, 3),
                             stride=(2,), padding=((2, 0),), dilation=(2,), groups=1),
    "2d-grouped-same-even": dict(transposed=False, x_shape=(2, 4, 6, 5), w_shape=(6, 2, 2, 3),
                                 stride=(1, 1), padding="same", dilation=(1, 2), groups=2),
    "2d-depthwise-strided": dict(transposed=False, x_shape=(2, 3, 9, 8), w_shape=(3, 1, 3, 3),
                                 stride=(2, 3), padding=1, dilation=(1, 1), groups=3),
    "2d-depthwise-wide-asymmetric": dict(transposed=False, x_shape=(2, 3, 11, 10),
                                         w_shape=(6, 1, 5, 5), stride=(3, 2),
                                         padding=((2, 1), (0, 3)), dilation=(2, 1), groups=3),
    "2d-depthwise-7x7-same": dict(transposed=False, x_shape=(3, 4, 8, 9), w_shape=(4, 1, 7, 7),
                                  stride=(1, 1), padding="same", dilation=(1, 1), groups=4),
    "2d-grouped-pairs-dilated": dict(transposed=False, x_shape=(1, 6, 9, 9),
                                     w_shape=(4, 3, 3, 2), stride=(2, 1), padding=(2, 1),
                                     dilation=(2, 3), groups=2),
    "3d-depth3": dict(transposed=False, x_shape=(1, 2, 5, 4, 6), w_shape=(3, 2, 3, 2, 3),
                      stride=(1, 1, 2), padding=1, dilation=(1, 1, 1), groups=1),
    "3d-depth1-grouped-pairs": dict(transposed=False, x_shape=(2, 4, 3, 5, 4),
                                    w_shape=(4, 2, 1, 3, 2), stride=(2, 1, 1),
                                    padding=((0, 1), (1, 0), (0, 2)), dilation=(1, 2, 1),
                                    groups=2),
    "3d-dilated-depth": dict(transposed=False, x_shape=(1, 1, 7, 3, 3), w_shape=(2, 1, 2, 1, 2),
                             stride=(2, 1, 1), padding=0, dilation=(3, 1, 1), groups=1),
    "t1d-output-padding": dict(transposed=True, x_shape=(2, 2, 4), w_shape=(2, 3, 4),
                               stride=(2,), padding=(1,), dilation=(1,), groups=1,
                               output_padding=(1,)),
    "t2d-grouped": dict(transposed=True, x_shape=(1, 4, 3, 3), w_shape=(4, 1, 2, 3),
                        stride=(2, 3), padding=(0, 1), dilation=(1, 1), groups=2,
                        output_padding=(1, 2)),
    "t3d-dilated": dict(transposed=True, x_shape=(2, 2, 3, 2, 2), w_shape=(2, 2, 3, 2, 1),
                        stride=(2, 1, 1), padding=(1, 0, 0), dilation=(2, 1, 1), groups=1,
                        output_padding=(1, 0, 0)),
}


def _double(shape):
    return torch.randn(shape, dtype=torch.float64)


def _hyper(case):
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"])
    if case["transposed"]:
        kw["output_padding"] = case["output_padding"]
    return kw


def _offered(diagram):
    return {r for s in steps_of(tndiag.compile(diagram)) for r in s.routes}


def _check_forced(diagram, route, args, want, what):
    """The forced program matches ``want``; a route no step offers is refused by name."""
    if route not in _offered(diagram):
        with pytest.raises(InvalidArgumentError, match=route):
            tndiag.compile(diagram, route=route)
        return False
    program = tndiag.compile(diagram, route=route)
    assert any(s.route == route for s in steps_of(program)), str(program)
    assert_close(program(*args), want, f"{what}, route {route}")
    return True


def check_conv_routes(case, route, check=None):
    """Forward with bias, input VJP and weight VJP of ``case`` along ``route``, each checked by
    ``check(diagram, route, args, want, what)`` (default: the forced program against torch)."""
    check = check or _check_forced
    x, w = _double(case["x_shape"]), _double(case["w_shape"])
    b = _double(torch_conv(case)(x, w).shape[1:2])
    y = torch_conv(case)(x.requires_grad_(), w.requires_grad_(), b)
    v = _double(y.shape)
    gx, gw = torch.autograd.grad(y, (x, w), v)
    x, w = x.detach(), w.detach()
    ran = check(build_conv(case, bias=True), route, (x, w, b), y.detach(), "forward")
    kw = dict(_hyper(case), transposed=case["transposed"])
    ran |= check(ops.conv_input_vjp(x.shape, w.shape, **kw), route, (w, v), gx, "input VJP")
    ran |= check(ops.conv_weight_vjp(x.shape, w.shape, **kw), route, (x, v), gw, "weight VJP")
    return ran


@pytest.mark.parametrize("route", CONV_ROUTES)
@pytest.mark.parametrize("name", list(GRID))
def test_conv_routes_grid(name, route):
    ran = check_conv_routes(GRID[name], route)
    if route == "depth2d":
        assert ran == (len(GRID[name]["w_shape"]) == 5)
    elif route == "rows":  # 2-d weight VJPs only
        assert ran == (len(GRID[name]["w_shape"]) == 4)
    else:
        assert ran


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(max_ndim=3))
def test_conv_routes_hypothesis(case):
    for route in CONV_ROUTES:
        check_conv_routes(case, route)


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(transposed=True, max_ndim=3))
def test_transposed_conv_routes_hypothesis(case):
    for route in CONV_ROUTES:
        check_conv_routes(case, route)


@pytest.mark.parametrize("name", ["2d-grouped-same-even", "2d-depthwise-strided",
                                  "3d-depth1-grouped-pairs", "t2d-grouped"])
def test_gemm_weight_vjp_in_sample_chunks(name, monkeypatch):
    """The ``gemm`` weight gradient sums its per-sample products in chunks of samples
    (``WEIGHT_CHUNK_ELEMENTS``); one sample per chunk gives torch's gradient too."""
    from tndiag.backends.routes import conv

    monkeypatch.setattr(conv, "WEIGHT_CHUNK_ELEMENTS", 1)
    case = dict(GRID[name], x_shape=(3, *GRID[name]["x_shape"][1:]))
    x, w = _double(case["x_shape"]), _double(case["w_shape"])
    y = torch_conv(case)(x.requires_grad_(), w.requires_grad_())
    v = _double(y.shape)
    (gw,) = torch.autograd.grad(y, (w,), v)
    diagram = ops.conv_weight_vjp(x.shape, w.shape, **_hyper(case), transposed=case["transposed"])
    assert _check_forced(diagram, "gemm", (x.detach(), v), gw, name)


def reference_kfac_reduce(x, case):
    """``1/(N·L²) Σ_n ū ūᵀ`` per group, ū the sum over positions of the unfolded input."""
    C, K, G, N = x.shape[1], case["w_shape"][2:], case["groups"], x.shape[0]
    taps = math.prod(K)
    eye = torch.eye(C * taps, dtype=x.dtype).reshape(C * taps, C, *K)
    ref = dict(case, groups=1, w_shape=tuple(eye.shape))
    U = torch_conv(ref)(x, eye).flatten(2)
    u = U.reshape(N, G, -1, U.shape[-1]).sum(-1)
    return torch.einsum("ngi,ngj->gij", u, u) / (N * U.shape[-1] ** 2)


def check_kfac_reduce_routes(case):
    x = _double(case["x_shape"])
    kw = {k: v for k, v in _hyper(case).items() if k != "output_padding"}
    diagram = ops.kfac_reduce(x.shape, case["w_shape"][2:], **kw)
    want = reference_kfac_reduce(x, case)
    return [r for r in WINDOW_ROUTES if _check_forced(diagram, r, (x,), want, "KFAC-reduce")]


@pytest.mark.parametrize("name", [n for n, c in GRID.items() if not c["transposed"]])
def test_kfac_reduce_routes_grid(name):
    assert check_kfac_reduce_routes(GRID[name]) == list(WINDOW_ROUTES)


@pytest.mark.parametrize("shape,kernel,kw", [
    ((2, 3, 8, 8), (1, 1), {}),  # 1×1: one sum
    ((2, 3, 8, 12), (4, 4), dict(stride=4)),  # patchify S = K
    ((2, 1, 40), (10,), dict(stride=5)),  # framing K = 2S
    ((1, 2, 9, 7), (4, 2), dict(stride=2, padding=1)),  # K = 2S with padding
])
def test_kfac_reduce_single_sum_cases(shape, kernel, kw):
    case = dict(transposed=False, x_shape=shape, w_shape=(1, shape[1], *kernel),
                stride=kw.get("stride", 1), padding=kw.get("padding", 0), dilation=1, groups=1)
    assert check_kfac_reduce_routes(case) == list(WINDOW_ROUTES)


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(max_ndim=3))
def test_kfac_reduce_routes_hypothesis(case):
    check_kfac_reduce_routes(case)


def test_route_names_are_checked():
    program = tndiag.compile(ops.conv((1, 1, 16), (2, 1, 4), stride=2))
    with pytest.raises(InvalidArgumentError, match="'fast'"):
        tndiag.compile(ops.conv((1, 1, 16), (2, 1, 4), stride=2), route="fast")
    with pytest.raises(InvalidArgumentError, match="depth2d.*native"):
        with_route(program, "depth2d")
    with pytest.raises(InvalidArgumentError, match="memory_limit"):
        tndiag.compile(ops.conv((1, 1, 16), (2, 1, 4)), route="gemm", memory_limit=10**6)


def test_routes_are_listed_per_step_kind():
    conv3d = tndiag.compile(ops.conv((1, 2, 4, 4, 4), (2, 2, 3, 3, 3))).steps[0]
    assert conv3d.routes == ("native", "gemm", "depth2d")
    assert routes_for(conv3d.kind, conv3d.info) == conv3d.routes
    conv2d = tndiag.compile(ops.conv((1, 2, 4, 4), (2, 2, 3, 3))).steps[0]
    assert conv2d.routes == ("native", "gemm")
    weight2d = tndiag.compile(ops.conv_weight_vjp((1, 2, 4, 4), (2, 1, 3, 3), groups=2)).steps
    assert [s.routes for s in weight2d] == [("native", "gemm", "rows")]


def test_printed_program_shows_the_route():
    text = str(tndiag.compile(ops.conv((1, 2, 4, 4, 4), (2, 2, 3, 3, 3)), route="gemm"))
    assert "route: gemm (chosen; routes native, gemm, depth2d)" in text


@pytest.mark.parametrize("diagram,route", [
    (ops.conv_input_vjp((2, 1, 40), (4, 1, 10), stride=5), "gemm"),
    (ops.conv((1, 2, 5, 6, 6), (3, 2, 3, 3, 3), padding=1), "depth2d"),
    (ops.kfac_reduce((2, 3, 8, 8), (3, 3), padding=1), "classes"),
], ids=["gemm", "depth2d", "classes"])
def test_routed_program_exports_along_the_default_route(diagram, route):
    program = tndiag.compile(diagram, route=route)
    namespace: dict = {}
    exec(compile(tndiag.export(program), "<exported>", "exec"), namespace)
    args = [_double([int(v) for v in s]) for s in program.input_shapes]
    assert_close(namespace["forward"](*args), program(*args), f"exported, route {route}")


@pytest.mark.parametrize("x_shape,w_shape,kw,want", [
    ((8, 128, 56, 56), (128, 1, 7, 7), dict(padding=3, groups=128), "rows"),  # convnext
    ((8, 240, 28, 28), (240, 1, 5, 5), dict(padding=2, groups=240), "rows"),
    ((8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1, groups=144), "native"),  # mobilenetv2
    ((8, 144, 56, 56), (144, 1, 3, 3), dict(stride=2, padding=1, groups=144), "native"),
    ((8, 256, 56, 56), (256, 8, 3, 3), dict(padding=1, groups=32), "native"),  # resnext
    ((32, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), "native"),  # dense, small images
], ids=["dw7x7", "dw5x5", "dw3x3", "dw3x3-s2", "resnext-g32", "dense-7x7-image"])
def test_model_picks_rows_for_wide_depthwise_weight_gradients(x_shape, w_shape, kw, want):
    (step,) = steps_of(tndiag.compile(ops.conv_weight_vjp(x_shape, w_shape, **kw), tune=False))
    assert "rows" in step.routes and step.route == want


def test_every_native_route_has_a_kernel_and_is_in_the_grids():
    from tndiag.backends.routes.conv import ROUTE_KERNELS
    from tndiag.codegen.program import StepKind
    from tndiag.codegen.routes import ROUTES, all_routes

    native = tuple(name for name, _ in ROUTES[StepKind.NATIVE])
    assert native == CONV_ROUTES and set(native) <= set(all_routes())
    assert set(ROUTE_KERNELS) == set(native) - {"native"}
