"""Export along the chosen route, and of programs with kept positions (tensor dropout).

Every route is forced (``compile(..., route=...)``), the program exported and the exported
function run: it must make the backend's very kernel call for each step and equal the
compiled program and an oracle in float64 (torch's kernels and autograd, the unfolded input
for KFAC-reduce; the grids of ``test_routes.py``: N = 1, 2, 3, stride, 'same' and asymmetric
padding, dilation, groups, transposed). Programs with kept positions take them as an argument
and match the compiled program and the masked dense oracle.
"""

import builtins
import json

import pytest
import torch
from diagram_checks import assert_close, conv_cases, pad_pairs
from hypothesis import example, given, settings
from oracle_settings import oracle_settings
from random_diagrams import assert_matches_oracle, dense_value, diagrams, positions_for
from test_routes import GRID, _double, _hyper, reference_kfac_reduce
from test_routes import check_conv_routes as conv_routes_checked

import tndiag
from tndiag import ops
from tndiag.backends.torch_export import (
    EMITTERS,
    exported_route,
    kernel_source,
    kernel_text,
    modules_text,
)
from tndiag.backends.torch_native import PREPARERS
from tndiag.codegen import SumProgram, tuning
from tndiag.codegen.export import export
from tndiag.codegen.routes import steps_of
from tndiag.functional.dropout import approximate_program
from tndiag.passes.subsample import subsample

CONV_ROUTES = ("native", "gemm", "depth2d", "rows")
WINDOW_ROUTES = ("direct", "classes", "matmul", "kron")


def _load(source):
    namespace: dict = {}
    exec(builtins.compile(source, "<exported>", "exec"), namespace)
    return namespace["forward"]


def _offered(diagram):
    return {r for s in steps_of(tndiag.compile(diagram)) for r in s.routes}


def _run_steps(program):
    """The steps a (sum) program runs: every term's."""
    terms = program.terms if isinstance(program, SumProgram) else (program,)
    return [s for t in terms for s in t.steps]


def _calls_the_backends_kernels(program, source):
    """Each step's exported call is the backend's runner: same kernel, same recipe."""
    plan = source.split("# the plan")[1]
    for step in _run_steps(program):
        runner = PREPARERS[step.kind](step)
        kernel, recipe = EMITTERS[step.kind](step)
        assert (kernel, recipe) == (runner.func, runner.args[0]), step.label
        assert f"= {recipe!r}" in plan and f"{kernel.__name__}(_R" in plan, step.label


def check_exported_route(diagram, route, args, want, what):
    """Forced ``route``: the exported function equals the program and ``want``."""
    if route not in _offered(diagram):
        return False
    program = tndiag.compile(diagram, route=route)
    assert any(s.route == route for s in _run_steps(program)), str(program)
    source = export(program)
    _calls_the_backends_kernels(program, source)
    got = _load(source)(*args)
    torch.testing.assert_close(got, program(*args), rtol=1e-12, atol=1e-12)
    assert_close(got, want, f"exported {what}, route {route}")
    return True


def check_conv_routes(case, route):
    """Forward with bias, input VJP and weight VJP of ``case``, exported along ``route``."""
    return conv_routes_checked(case, route, check_exported_route)


@pytest.mark.parametrize("route", CONV_ROUTES)
@pytest.mark.parametrize("name", list(GRID))
def test_conv_routes_export_grid(name, route):
    ran = check_conv_routes(GRID[name], route)
    dims = {"depth2d": 5, "rows": 4}.get(route)
    assert ran == (dims is None or len(GRID[name]["w_shape"]) == dims)


@settings(max_examples=10, deadline=None)
@given(case=conv_cases(max_ndim=3))
def test_conv_routes_export_hypothesis(case):
    for route in CONV_ROUTES:
        check_conv_routes(case, route)


@settings(max_examples=10, deadline=None)
@given(case=conv_cases(transposed=True, max_ndim=3))
@example(case=dict(transposed=True, x_shape=(1, 1, 1, 1, 1), w_shape=(1, 1, 2, 1, 1),
                   stride=(2, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1), groups=1,
                   output_padding=(0, 0, 0)))  # the bias stays a sum term
def test_transposed_conv_routes_export_hypothesis(case):
    for route in CONV_ROUTES:
        check_conv_routes(case, route)


def check_kfac_reduce_routes(case):
    x = _double(case["x_shape"])
    kw = {k: v for k, v in _hyper(case).items() if k != "output_padding"}
    diagram = ops.kfac_reduce(x.shape, case["w_shape"][2:], **kw)
    want = reference_kfac_reduce(x, case)
    return [r for r in WINDOW_ROUTES
            if check_exported_route(diagram, r, (x,), want, "KFAC-reduce")]


@pytest.mark.parametrize("name", [n for n, c in GRID.items() if not c["transposed"]])
def test_kfac_reduce_routes_export_grid(name):
    assert check_kfac_reduce_routes(GRID[name]) == list(WINDOW_ROUTES)


@settings(max_examples=10, deadline=None)
@given(case=conv_cases(max_ndim=3))
def test_kfac_reduce_routes_export_hypothesis(case):
    check_kfac_reduce_routes(case)


def test_a_measured_step_exports_the_stored_winner(tmp_path, monkeypatch):
    """tune=True: the winner in the tuning cache for the CPU and the default dtype, else the
    cost model's route."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    program = tndiag.compile(ops.conv((1, 1, 40), (4, 1, 10), stride=5), tune=True)
    (step,) = program.steps
    assert step.tune and exported_route(step).route == step.route
    context = {"dtype": str(torch.get_default_dtype()).replace("torch.", ""),
               "device": "cpu", "threads": torch.get_num_threads(),
               "torch": torch.__version__}
    other = next(r for r in step.routes if r != step.route)
    tuning.record(step, context, {r: 1.0 if r == other else 2.0 for r in step.routes})
    assert exported_route(step).route == other and not exported_route(step).tune
    assert json.loads(tuning.cache_path().read_text())
    x, w = _double((1, 1, 40)), _double((4, 1, 10))
    torch.testing.assert_close(_load(export(program))(x, w), program(x, w), rtol=1e-12,
                               atol=1e-12)


def test_kernel_modules_share_one_namespace_without_clashes():
    """The route, gather and base kernels exported together define each name once."""
    source = kernel_source(tndiag.compile(ops.conv((1, 2, 5, 4, 6), (3, 2, 3, 2, 3)),
                                          route="depth2d"))
    assert source.count("\ndef windows(") == 1 and "def run_routed(" in source
    assert "from tndiag" not in source and "import tndiag" not in source


# --- kept positions (tensor dropout) -------------------------------------------------------

def _masked_weight_vjp(x, v, positions, dim, keep, hyper):
    """Autograd weight gradient of the convolution of ``x`` with every slice of spatial
    axis ``dim`` outside ``positions`` zeroed, over ``keep`` (the dense oracle)."""
    stride, padding, dilation, groups, w_shape = hyper
    mask = torch.zeros(x.shape[2 + dim], dtype=x.dtype)
    mask[positions] = 1
    view = [1] * x.dim()
    view[2 + dim] = -1
    w = torch.zeros(w_shape, dtype=x.dtype, requires_grad=True)
    nd = len(w_shape) - 2
    flat = [p for lr in reversed(pad_pairs(padding, nd, w_shape[2:], dilation)) for p in lr]
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[nd]
    y = fn(torch.nn.functional.pad(x * mask.view(view), flat), w, None, stride, 0, dilation,
           groups)
    (g,) = torch.autograd.grad(y, w, v)
    return g / keep


DROPOUT_CASES = [
    ((2, 6, 8, 8), (4, 3, 3, 3), 1, 1, 1, 2, [1, 6]),
    ((2, 2, 9), (3, 2, 3), 2, 1, 1, 1, [0, 4, 8]),
    ((1, 2, 6, 5, 4), (2, 2, 2, 3, 2), 1, 1, (1, 2, 1), 1, [2, 3]),
]


@pytest.mark.parametrize("lowerings", [None, ()], ids=["gather", "dense"])
@pytest.mark.parametrize("case", range(len(DROPOUT_CASES)))
def test_a_tensor_dropout_program_exports_with_positions_as_argument(case, lowerings):
    """Spatial sampling of the first axis: the exported function takes the kept positions
    after the tensors, as the program does (gather step, or the dense sliced pattern)."""
    x_shape, w_shape, stride, padding, dilation, groups, kept = DROPOUT_CASES[case]
    diagram = subsample(ops.conv_weight_vjp(x_shape, w_shape, stride=stride, padding=padding,
                                            dilation=dilation, groups=groups),
                        "i1", 0.5, "bernoulli", len(kept), "keep_i1")
    program = tndiag.compile(diagram, lowerings=lowerings)
    assert program.inputs[-1] == "keep_i1"
    labels = [s.label for s in program.steps]
    assert ("gather" in labels) == (lowerings is None)
    x = _double(x_shape)
    positions = torch.tensor(kept)
    v = _double(program.input_shapes[1])
    args = (x.index_select(2, positions), v, positions)
    source = export(program)
    assert "keep_i1: kept positions (int64, shape" in source
    got = _load(source)(*args)
    torch.testing.assert_close(got, program(*args), rtol=1e-12, atol=1e-12)
    want = _masked_weight_vjp(x, v, positions, 0, 0.5, (stride, padding, dilation, groups,
                                                        w_shape))
    assert_close(got, want, "exported tensor-dropout weight VJP")


def test_approximate_program_exports():
    """The program tndiag.functional runs (channel and spatial legs)."""
    for leg in ("i1", "ci"):
        program = approximate_program(leg, 2, 0.5, (2, 6, 8, 8), (4, 3, 3, 3), 1, 1, 1, 2)
        x, v = _double(program.input_shapes[0]), _double(program.input_shapes[1])
        args = (x, v, *[torch.tensor([1, 6])] * (len(program.inputs) - 2))
        torch.testing.assert_close(_load(export(program))(*args), program(*args),
                                   rtol=1e-12, atol=1e-12)


@oracle_settings()
@given(diagrams())
def test_exported_random_diagram_with_kept_positions_matches_the_dense_oracle(diagram):
    program = tndiag.compile(diagram)
    gen = torch.Generator().manual_seed(0)
    inputs = {n: torch.randn([int(s) for s in shape], generator=gen, dtype=torch.float64)
              for n, shape in zip(program.inputs, program.input_shapes)}
    inputs.update(positions_for(diagram, gen))
    got = _load(export(program))(*[inputs[n] for n in program.inputs])
    torch.testing.assert_close(got, program(**inputs), rtol=1e-12, atol=1e-12)
    assert_matches_oracle(got, dense_value(diagram, inputs), "exported")


def test_bad_kept_positions_are_refused_by_the_exported_function():
    program = approximate_program("i1", 2, 0.5, (2, 3, 8), (4, 3, 3))
    forward = _load(export(program))
    x, v = _double(program.input_shapes[0]), _double(program.input_shapes[1])
    with pytest.raises(TypeError, match="keep_i1 holds kept positions"):
        forward(x, v, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"keep_i1: kept positions must lie in \[0, 8\)"):
        forward(x, v, torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="keep_i1 has shape"):
        forward(x, v, torch.tensor([0, 1, 2]))


# --- what a kernel module may import -------------------------------------------------------

KERNEL_MODULES = {
    "kmod_numpy": "import numpy\n\n\ndef f(x):\n    return x\n",
    "kmod_runtime": ("from __future__ import annotations\n\n"
                     "from tndiag.codegen.program import Step\n\n\n"
                     "def f(x):\n    return Step((0,), x)\n"),
    "kmod_annotation": ("from __future__ import annotations\n\nimport math\n\n"
                        "from tndiag.codegen.program import Step\n\n\n"
                        "def f(step: Step) -> Step:\n    return math.prod(step.positions)\n"),
    "kmod_eager": ("from tndiag.codegen.program import Step\n\n\n"
                   "def f(step: Step) -> int:\n    return 0\n"),
    "kmod_clash": "import torch\n\n\ndef f(step):\n    return torch.zeros(1)\n",
}


@pytest.fixture
def kernel_modules(tmp_path, monkeypatch):
    for name, text in KERNEL_MODULES.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    kernel_text.cache_clear()
    yield
    kernel_text.cache_clear()


@pytest.mark.parametrize("name,fragment", [
    ("kmod_numpy", r"kernel module kmod_numpy imports \['numpy'\]"),
    ("kmod_runtime", r"kernel module kmod_runtime uses \['Step'\] from tndiag.codegen.program "
                     "at run time"),
    ("kmod_eager", "kmod_eager imports tndiag names for annotations without"),
])
def test_a_kernel_module_that_needs_more_than_torch_is_refused(kernel_modules, name, fragment):
    with pytest.raises(tndiag.CompileError, match=fragment):
        kernel_text(name)


def test_annotation_imports_are_dropped_and_clashes_refused(kernel_modules):
    found = kernel_text("kmod_annotation")
    assert found.imports == ("from __future__ import annotations", "import math")
    assert found.needs == () and found.names == {"f"} and "tndiag" not in found.text
    namespace: dict = {}
    exec("from __future__ import annotations\n" + modules_text(["kmod_annotation"]), namespace)
    assert namespace["f"](tndiag.codegen.program.Step((2, 3), "a,a->")) == 6
    with pytest.raises(tndiag.CompileError, match="kmod_annotation and kmod_clash both define"):
        modules_text(["kmod_annotation", "kmod_clash"])
