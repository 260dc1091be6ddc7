"""``export``: standalone modules run without tndiag and match compile results and torch."""

import builtins
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diagram_checks import inputs_for
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle_settings import oracle_settings
from random_diagrams import diagrams

import tndiag
from tests.corpus import IDS, build
from tndiag import CompileError, InvalidArgumentError, compile, ops
from tndiag.codegen import Program, SlicedProgram, SumProgram
from tndiag.codegen.export import export
from tndiag.ir import Sum

RUNNER = textwrap.dedent('''
    import importlib, json, sys
    import torch
    try:
        import tndiag  # noqa: F401
        isolated = False
    except ModuleNotFoundError:
        isolated = True
    names = json.loads(open("names.json").read())
    for name in names:
        module = importlib.import_module(name)
        inputs = torch.load(name + ".in.pt")
        torch.save(module.forward(*inputs), name + ".out.pt")
    print(json.dumps({"isolated": isolated, "done": len(names)}))
''')


def sizes_for(diagram):
    """Values for the symbols of a symbolic corpus diagram (spatial 7, kernels 3, else 2)."""
    symbols = diagram.free_symbols() if not isinstance(diagram, Sum) else set().union(
        *(t.free_symbols() for t in diagram.terms))
    return {s.name: 7 if s.name.startswith("I") else 3 if s.name.startswith("K") else 2
            for s in symbols}


def module_name(name):
    return "m_" + name.replace("-", "_")


def random_inputs(program):
    return [torch.randn(shape, dtype=torch.float64) for shape in program.input_shapes]


def load_exported(source):
    """Run exported source in a fresh namespace (it imports only torch)."""
    namespace = {}
    exec(builtins.compile(source, "<exported>", "exec"), namespace)
    return namespace


def torch_only_path(scratch: Path) -> str:
    """torch's site-packages, or (when tndiag is installed there) a copy of it made of links
    to everything except tndiag."""
    site = Path(torch.__file__).resolve().parent.parent
    if not (site / "tndiag").exists():
        return str(site)  # an editable install lives in a .pth, which -S never reads
    scratch.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(("tndiag", "__editable__")):
            (scratch / entry.name).symlink_to(entry)
    return str(scratch)


def isolated_cases():
    """(module name, diagram) for every corpus entry and every builder call."""
    cases = [(module_name(name), build(name)) for name in IDS]
    for builder, calls in sorted(BUILDER_CALLS.items()):
        cases += [(f"b_{builder}_{k}", call()) for k, call in enumerate(calls)]
    return cases


def _bounded_cases():
    """Memory-bounded programs: a sliced KFC, a sliced bias sum, an unsliced fallback."""
    kfc = ops.kfc((6, 3, 6, 6), 3, padding=1)
    conv = ops.conv((6, 3, 8, 8), (4, 3, 3, 3), bias=True)
    return [("kfc_sliced", compile(kfc, memory_limit=4000)),
            ("bias_sum_sliced", compile(conv, memory_limit=3000)),
            ("whole", compile(ops.conv((2, 3, 8), (4, 3, 3)), memory_limit=10 ** 9))]


def test_every_corpus_diagram_and_op_runs_in_a_process_without_tndiag(tmp_path):
    expected = {}
    cases = [(mod, compile(d, sizes_for(d), lowerings=lowerings), f"{mod}_{mode}")
             for mod, d in isolated_cases()
             for mode, lowerings in (("window", None), ("dense", ()))]
    cases += [(mod, program, mod) for mod, program in _bounded_cases()]
    for _, program, key in cases:
        inputs = random_inputs(program)
        source = export(program)
        assert "import tndiag" not in source and "from tndiag" not in source
        (tmp_path / f"{key}.py").write_text(source)
        torch.save(inputs, tmp_path / f"{key}.in.pt")
        expected[key] = program(*inputs)
    (tmp_path / "names.json").write_text(json.dumps(sorted(expected)))
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = torch_only_path(tmp_path / "site")
    # -S: no site module, so the .pth of tndiag's (editable) install is never read.
    done = subprocess.run([sys.executable, "-S", "runner.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"isolated": True, "done": len(cases)}
    for key, want in expected.items():
        got = torch.load(tmp_path / f"{key}.out.pt")
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-10), key


def _same_as_compiled(program, inputs=None):
    namespace = load_exported(export(program))
    inputs = inputs if inputs is not None else random_inputs(program)
    got, want = namespace["forward"](*inputs), program(*inputs)
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    return namespace


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("lowerings", [None, ()], ids=["structured", "dense"])
def test_exported_corpus_program_equals_the_compiled_program(name, lowerings):
    diagram = build(name)
    program = compile(diagram, sizes_for(diagram), lowerings=lowerings)
    namespace = _same_as_compiled(program)
    assert namespace["OUTPUT_SHAPE"] == program.output_shape
    assert namespace["INPUT_SHAPES"] == dict(zip(program.inputs, program.input_shapes))


@oracle_settings()
@given(diagrams())
def test_exported_random_diagram_equals_the_compiled_program(diagram):
    program = compile(diagram)
    inputs = inputs_for(diagram)  # kept positions of sliced patterns included
    _same_as_compiled(program, [inputs[n] for n in program.inputs])


@pytest.mark.parametrize("case", range(3), ids=["kfc_sliced", "bias_sum_sliced", "whole"])
def test_memory_bounded_and_sum_programs_export(case):
    name, program = _bounded_cases()[case]
    assert isinstance(program, (SlicedProgram, SumProgram, Program))
    namespace = _same_as_compiled(program)
    source = export(program)
    if name != "whole":
        assert "run_sliced(" in source
    if name == "bias_sum_sliced":
        assert isinstance(program, SumProgram) and "run_sum(" in source
    # float32 inputs pick the float32 chunk plan, as the backend does
    inputs = [t.float() for t in random_inputs(program)]
    torch.testing.assert_close(namespace["forward"](*inputs), program(*inputs))


def test_export_calls_the_kernels_of_the_compiled_program():
    """The native kernels, views, window sums, Gram and scatter steps are exported as such."""
    conv = export(ops.conv((2, 3, 8, 8), (4, 3, 3, 3), padding=1, bias=True))
    assert "run_conv(" in conv and "F.conv2d" in conv and "einsum(" not in conv.split(
        "# the plan")[1]
    assert "torch.ops.aten.convolution_backward" in export(
        tndiag.vjp(ops.conv((2, 3, 8), (4, 3, 3)), wrt="W", vector="V"))
    assert "run_window_sum(" in export(ops.kfac_reduce((2, 3, 6, 6), 3, padding=1))
    assert "run_gram(" in export(ops.kfc((2, 3, 6, 6), 3, padding=1))
    assert "run_scatter(" in export(ops.fold((2, 18, 80), (8, 9), (3, 2), padding=1))
    assert "run_view(" in export(ops.unfold((2, 3, 8, 7), (3, 2), padding=1))


CONV_GRID = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=2),
    dict(stride=1, padding=2, dilation=2, groups=1),
    dict(stride=3, padding=0, dilation=1, groups=4),
]


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("hyper", CONV_GRID)
def test_conv_grid_matches_torch(ndim, hyper):
    x = torch.randn(2, 4, *[7] * ndim, dtype=torch.float64)
    w = torch.randn(4, 4 // hyper["groups"], *[3] * ndim, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    diagram = ops.conv(x.shape, w.shape, bias=True, **hyper)
    forward = load_exported(export(diagram))["forward"]
    want = getattr(F, f"conv{ndim}d")(x, w, b, **hyper)
    assert torch.allclose(forward(x, w, b), want, atol=1e-10)


@settings(max_examples=60)  # each example compiles, exports and runs a module
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 2), st.integers(0, 1), st.sampled_from([1, 2]))
def test_conv_transpose_property_matches_torch(ndim, k, stride, pad, dilation, op, groups):
    op = min(op, max(stride, dilation) - 1)
    x = torch.randn(2, 2 * groups, *[4] * ndim, dtype=torch.float64)
    w = torch.randn(2 * groups, 3, *[k] * ndim, dtype=torch.float64)
    try:
        want = getattr(F, f"conv_transpose{ndim}d")(x, w, stride=stride, padding=pad,
                                                    output_padding=op, groups=groups,
                                                    dilation=dilation)
    except RuntimeError:
        with pytest.raises(InvalidArgumentError):
            ops.conv_transpose(x.shape, w.shape, stride=stride, padding=pad,
                               output_padding=op, groups=groups, dilation=dilation)
        return
    diagram = ops.conv_transpose(x.shape, w.shape, stride=stride, padding=pad,
                                 output_padding=op, groups=groups, dilation=dilation)
    forward = load_exported(export(diagram, name="conv_t"))["conv_t"]
    assert torch.allclose(forward(x, w), want, atol=1e-10)


@settings(max_examples=60)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2))
def test_unfold_and_fold_property_match_torch(k, stride, pad, dilation):
    x = torch.randn(2, 3, 8, 7, dtype=torch.float64)
    hyper = dict(kernel_size=(k, 2), dilation=dilation, padding=pad, stride=stride)
    want = F.unfold(x, **hyper)
    unfold = load_exported(export(ops.unfold(x.shape, **hyper)))["forward"]
    assert torch.allclose(unfold(x), want, atol=1e-10)
    fold = load_exported(export(ops.fold(want.shape, (8, 7), **hyper)))["forward"]
    assert torch.allclose(fold(want), F.fold(want, (8, 7), **hyper), atol=1e-10)


def test_unfold_kernel_is_the_toeplitz_matrix():
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    toeplitz = load_exported(export(ops.unfold_kernel(w.shape, (6, 5), groups=2,
                                                      padding=1)))["forward"](w)
    want = F.conv2d(x, w, padding=1, groups=2).flatten(1)
    assert torch.allclose(x.flatten(1) @ toeplitz.T, want, atol=1e-10)


@pytest.mark.parametrize("pipeline", ["vjp{wrt=W}", "vjp{wrt=X}", "differentiate{wrt=X}"])
def test_derived_diagrams_export(pipeline):
    import tndiag.passes.differentiate  # noqa: F401  (registers the passes)
    from tndiag.ir import Graph, Index, variable
    from tndiag.passes import run_pipeline

    n, i, j = Index("n", 3), Index("i", 4), Index("j", 4)
    gram = Graph.of([variable("X", [n, i]), variable("X", [n, j]),
                     variable("W", [i, j], "parameter")], [n])
    for diagram in (ops.conv((2, 3, 6), (4, 3, 3), stride=2), gram):
        derived = run_pipeline(diagram, pipeline).diagram
        _same_as_compiled(compile(derived))


def test_shape_and_type_checks():
    forward = load_exported(export(ops.conv((2, 3, 8), (4, 3, 3))))["forward"]
    with pytest.raises(ValueError, match=r"X has shape \[2, 3, 9\], expected \[2, 3, 8\]"):
        forward(torch.randn(2, 3, 9), torch.randn(4, 3, 3))
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        forward(torch.randn(2, 3, 8), [[1.0]])


def test_module_text_parts():
    diagram = ops.conv((2, 3, 8), (4, 3, 3), stride=2)
    dense = export(diagram, name="conv1d", lowering="dense")
    program = compile(diagram, lowerings=())  # the dense export follows the dense plan
    assert f"einsum {program.equation}" in dense
    assert "def conv1d(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:" in dense
    assert "cached(_STORE0, (1, _device, _dtype), dense_pattern, 8, 3, 3, 2, 0, 1" in dense
    assert "Diagram (tndiag text form)::" in dense
    assert "pattern(" in tndiag.export(diagram)  # tndiag.export quotes the text form
    assert "(not available" in export(program)
    structured = export(diagram, name="conv1d")
    assert "    conv1d: " in structured and "dense_pattern, 8" not in structured
    with pytest.raises(InvalidArgumentError, match="lowering must be one of"):
        export(diagram, lowering="sparse")


def test_recipes_are_literals():
    """Every recipe the exporter writes evaluates back to itself (no object reprs)."""
    from tndiag.backends.torch_export import EMITTERS
    for diagram in (ops.kfc((2, 3, 6, 6), 3, padding=1), ops.fold((2, 18, 20), (8, 9), (3, 2),
                                                                 padding=1, stride=2),
                    ops.conv((2, 4, 9), (6, 2, 3), stride=2, groups=2, bias=True)):
        program = compile(diagram)
        terms = program.terms if isinstance(program, SumProgram) else (program,)
        for step in (s for t in terms for s in t.steps):
            _, recipe = EMITTERS[step.kind](step)
            assert eval(repr(recipe)) == recipe  # noqa: S307


def test_bad_arguments():
    with pytest.raises(CompileError, match="symbolic"):
        export(ops.conv(ndim=1))
    with pytest.raises(InvalidArgumentError, match="name must be a public Python identifier"):
        export(ops.conv((1, 1, 4), (1, 1, 2)), name="class")
    with pytest.raises(InvalidArgumentError, match="sizes only apply"):
        export(compile(ops.conv((1, 1, 4), (1, 1, 2))), sizes={"N": 1})
    with pytest.raises(InvalidArgumentError, match="Graph, Sum or compiled program"):
        export("Y = X * W")
    assert isinstance(compile(ops.conv((1, 1, 4), (1, 1, 2))), Program)


#: One concrete call per builder of tndiag.ops (a test checks none is missing).
BUILDER_CALLS = {
    "conv": [lambda: ops.conv((2, 4, 7, 6), (6, 2, 3, 3), stride=2, padding=1, groups=2,
                              bias=True)],
    "conv_transpose": [lambda: ops.conv_transpose((2, 4, 5), (4, 3, 3), stride=2,
                                                  output_padding=1, bias=True)],
    "unfold": [lambda: ops.unfold((2, 3, 8, 7), (3, 2), padding=1)],
    "fold": [lambda: ops.fold((2, 18, 40), (8, 9), (3, 2), padding=1, stride=(2, 1))],
    "unfold_kernel": [lambda: ops.unfold_kernel((4, 1, 3, 3), (6, 5), groups=2, padding=1)],
    "conv_input_vjp": [lambda: ops.conv_input_vjp((2, 3, 8), (4, 3, 3), stride=2)],
    "conv_weight_vjp": [lambda: ops.conv_weight_vjp((2, 4, 8), (6, 2, 3), groups=2)],
    "conv_input_jvp": [lambda: ops.conv_input_jvp((2, 3, 8), (4, 3, 3))],
    "conv_weight_jvp": [lambda: ops.conv_weight_jvp((2, 3, 8), (4, 3, 3))],
    "conv_jacobian": [lambda: ops.conv_jacobian((1, 2, 5), (3, 2, 2), "X")],
    "kfc": [lambda: ops.kfc((2, 4, 6, 6), 3, padding=1, groups=2),
            lambda: ops.kfc((2, 3, 5), 2, transposed=True, stride=2, output_padding=1)],
    "kfac_reduce": [lambda: ops.kfac_reduce((2, 3, 6), 3, stride=2)],
    "per_sample_weight_vjp": [lambda: ops.per_sample_weight_vjp((2, 3, 6), (4, 2, 5, 4), 3)],
    "weight_ggn_diag": [lambda: ops.weight_ggn_diag((2, 3, 6), (4, 2, 5, 4), 3)],
    "weight_ggn_gram": [lambda: ops.weight_ggn_gram((2, 3, 6), (4, 2, 5, 4), 3)],
    "weight_ggn": [lambda: ops.weight_ggn((2, 3, 6), (4, 2, 5, 4), 3)],
    "grad_output_kfac": [lambda: ops.grad_output_kfac((2, 3, 4, 4)),
                         lambda: ops.grad_output_kfac((2, 3, 4, 4), reduce=True)],
}


def test_every_builder_is_exported():
    assert set(BUILDER_CALLS) == set(ops.__all__)


@pytest.mark.parametrize("lowering", ["window", "dense"])
@pytest.mark.parametrize("builder", sorted(BUILDER_CALLS))
def test_builder_export_matches_compile(builder, lowering):
    for call in BUILDER_CALLS[builder]:
        diagram = call()
        program = compile(diagram, lowerings=() if lowering == "dense" else None)
        inputs = random_inputs(program)
        source = export(diagram, lowering=lowering)
        assert "import tndiag" not in source and "from tndiag" not in source
        got = load_exported(source)["forward"](*inputs)
        torch.testing.assert_close(got, program(*inputs), rtol=1e-12, atol=1e-12)


def test_keyword_and_private_names_become_safe_arguments():
    from tndiag.ir import Graph, Index, variable

    n = Index("n", 3)
    graph = Graph.of([variable("lambda", [n]), variable("_x", [n], "vector")], [n])
    source = export(graph)
    assert "def forward(lambda_: torch.Tensor, v_x: torch.Tensor)" in source
    a, b = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    assert torch.allclose(load_exported(source)["forward"](a, b), a * b)


def test_torch_only_path_hides_an_installed_tndiag(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    for name in ("torch", "tndiag", "tndiag-0.1.0.dist-info", "sympy"):
        (site / name).mkdir(parents=True)
    monkeypatch.setattr(torch, "__file__", str(site / "torch" / "__init__.py"))
    path = Path(torch_only_path(tmp_path / "scratch"))
    assert sorted(p.name for p in path.iterdir()) == ["sympy", "torch"]


@given(st.integers(1, 9), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(-1, 2), st.integers(1, 2))
def test_summed_pattern_counts_hits(I, K, stride, pad_left, pad_right, dilation):
    """The exported ``Σ_o Π`` (no dense Π) against an explicit loop over o."""
    from tndiag.ir import Graph, Index, pattern_output_size, reduced_pattern, variable

    O = pattern_output_size(I, K, stride, pad_left, pad_right, dilation)
    if O < 1:
        return
    i, k = Index("i", I), Index("k", K)
    graph = Graph.of([reduced_pattern("R", i, k, O, stride, pad_left, pad_right, dilation),
                      variable("V", [k], "vector")], [i])
    source = export(graph)
    assert "reduced_matrix, " in source and "dense_pattern, " not in source
    v = torch.randn(K, dtype=torch.float64)
    want = torch.zeros(I, dtype=torch.float64)
    for o in range(O):
        for kk in range(K):
            ii = o * stride + kk * dilation - pad_left
            if 0 <= ii < I:
                want[ii] += v[kk]
    assert torch.allclose(load_exported(source)["forward"](v), want, atol=1e-12)
