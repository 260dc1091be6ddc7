"""The gallery (``examples/*.tnd``): every file parses, means what its comment says (checked
against torch), renders through ``examples/render_gallery.py``, and the diagrams notebook runs.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tndiag
from tndiag import compile

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FILES = sorted(p.name for p in EXAMPLES.glob("*.tnd"))
CONV = dict(stride=2, padding=1)
GROUPS = dict(CONV, groups=2)


def load(name):
    return tndiag.parse((EXAMPLES / name).read_text())


def unfolded_transposed(x):
    """Transpose-unfolded input: conv_transpose2d with an identity weight, flattened pixels."""
    c, k = x.shape[1], 3
    eye = torch.eye(c * k * k).reshape(c, k, k, c * k * k).permute(0, 3, 1, 2)
    return F.conv_transpose2d(x, eye, stride=2, padding=1, output_padding=1).flatten(2)


def per_sample_weight_grads(t):
    """Rows ``J_n^T S[z, n]`` (flattened weight gradients) for every (z, n)."""
    x, s = t["X"], t["S"]
    w_shape = (4, 3, 3, 2)
    rows = [torch.nn.grad.conv2d_weight(x[n:n + 1], w_shape, s[z, n:n + 1], **GROUPS).flatten()
            for z in range(s.shape[0]) for n in range(s.shape[1])]
    return torch.stack(rows), w_shape


def grouped_unfold(x):
    u = F.unfold(x, (3, 2), **CONV)
    return u.reshape(x.shape[0], 2, -1, u.shape[-1])


def vjp(fn, primal, v):
    primal = primal.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(primal), primal, v)
    return grad


def toeplitz(w):
    blocks = []
    for g in range(2):
        basis = torch.eye(3 * 8 * 7).reshape(-1, 3, 8, 7)
        blocks.append(F.conv2d(basis, w[2 * g:2 * g + 2], **CONV).flatten(1).T)
    return torch.stack(blocks)


ORACLES = {
    "forward.tnd": lambda t: F.conv2d(t["X"], t["W"], t["B"], **GROUPS),
    "input_jvp.tnd": lambda t: torch.func.jvp(lambda x: F.conv2d(x, t["W"], **GROUPS),
                                              (torch.randn_like(t["VX"]),), (t["VX"],))[1],
    "weight_jvp.tnd": lambda t: torch.func.jvp(lambda w: F.conv2d(t["X"], w, **GROUPS),
                                               (torch.randn_like(t["VW"]),), (t["VW"],))[1],
    "input_vjp.tnd": lambda t: vjp(lambda x: F.conv2d(x, t["W"], **GROUPS),
                                   torch.randn(4, 6, 8, 7), t["V"]),
    "weight_vjp.tnd": lambda t: vjp(lambda w: F.conv2d(t["X"], w, **GROUPS),
                                    torch.randn(4, 3, 3, 2), t["V"]),
    "unfold.tnd": lambda t: F.unfold(t["X"], (3, 2), **CONV),
    "fold.tnd": lambda t: F.fold(t["U"], (8, 7), (3, 2), **CONV),
    "kernel_unfold.tnd": lambda t: toeplitz(t["W"]),
    "transpose_unfold.tnd": lambda t: unfolded_transposed(t["X"]),
    "kfc.tnd": lambda t: torch.einsum("ngal,ngbl->gab", *[grouped_unfold(t["X"])] * 2) / 4,
    "kfac_reduce.tnd": lambda t: torch.einsum(
        "nga,ngb->gab", *[grouped_unfold(t["X"]).mean(-1)] * 2) / 4,
    "kfac_transposed.tnd": lambda t: torch.einsum(
        "nal,nbl->ab", *[unfolded_transposed(t["X"])] * 2) / 4,
    "kfac_reduce_transposed.tnd": lambda t: torch.einsum(
        "na,nb->ab", *[unfolded_transposed(t["X"]).mean(-1)] * 2) / 4,
    "ggn_diagonal.tnd": lambda t: (per_sample_weight_grads(t)[0] ** 2).sum(0).reshape(4, 3, 3, 2),
    "ggn_gram.tnd": lambda t: (lambda m: m @ m.T)(per_sample_weight_grads(t)[0]),
    "ggn_block.tnd": lambda t: (lambda m: (m.T @ m).reshape(2 * (4, 3, 3, 2)))(
        per_sample_weight_grads(t)[0]),
    "grad_output_kfac.tnd": lambda t: torch.einsum("ncij,ndij->cd", t["V"], t["V"]),
    "grad_output_kfac_reduce.tnd": lambda t: torch.einsum(
        "nc,nd->cd", *[t["V"].sum((2, 3))] * 2),
}


def random_inputs(program):
    pairs = zip(program.inputs, program.input_shapes, strict=True)
    return {name: torch.randn(shape) for name, shape in pairs}


def test_every_gallery_file_has_an_oracle():
    assert set(FILES) == set(ORACLES)
    assert len(FILES) >= 15


@pytest.mark.parametrize("name", FILES)
def test_gallery_file_means_what_it_says(name):
    diagram = load(name)
    program = compile(diagram)
    inputs = random_inputs(program)
    want = ORACLES[name](inputs)
    got = program(**inputs)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-10), name
    assert tndiag.parse(tndiag.to_text(diagram)) == diagram


@pytest.mark.parametrize("name", FILES)
def test_simplify_keeps_the_value(name):
    diagram = load(name)
    simple = tndiag.run_pipeline(diagram, "simplify").diagram
    program = compile(diagram)
    inputs = random_inputs(program)
    assert torch.allclose(compile(simple)(**inputs), program(**inputs), atol=1e-10)


@pytest.mark.parametrize("pipeline, name", [("vjp{wrt=X}", "input_vjp.tnd"),
                                            ("vjp{wrt=W}", "weight_vjp.tnd")])
def test_derived_from_forward_matches_the_gallery(pipeline, name):
    derived = tndiag.run_pipeline(load("forward.tnd"), pipeline).diagram
    program = compile(derived)
    inputs = random_inputs(program)
    assert torch.allclose(program(**inputs), ORACLES[name](inputs), atol=1e-10)


def test_render_gallery_script(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(EXAMPLES / "render_gallery.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    index = (tmp_path / "index.html").read_text()
    assert all(f"src='{name[:-4]}.svg'" in index for name in FILES)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    for name in FILES:
        root = ET.parse(tmp_path / name.replace(".tnd", ".svg")).getroot()
        titles = {g.find("svg:title", ns).text for g in root.iterfind(".//svg:g", ns)
                  if g.get("class") == "node"}
        diagram = load(name)
        terms = diagram.terms if isinstance(diagram, tndiag.Sum) else (diagram,)
        prefix = (lambda k: f"s{k}/") if isinstance(diagram, tndiag.Sum) else (lambda k: "")
        for k, term in enumerate(terms):
            assert {prefix(k) + t for t in term.names} <= titles, name


def test_notebook_runs_from_any_directory(tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # execute() extends it
    from execute_notebooks import execute

    notebook = execute(ROOT / "notebooks" / "01-diagrams.ipynb", tmp_path)  # not notebooks/
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = {key for o in outputs for key in o.get("data", {})}
    assert {"image/svg+xml", "text/html"} <= kinds  # diagrams, film strips and programs display


def test_committed_notebook_carries_its_outputs():
    """Pictures show on a code host: the notebook is committed executed (see
    scripts/execute_notebooks.py)."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(ROOT / "notebooks" / "01-diagrams.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code)
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    svgs = [o for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert len(svgs) >= 5
    last_expression = [cell for cell in code if cell.source.strip().splitlines()[-1].isidentifier()]
    assert all(cell.outputs for cell in last_expression)


BUILDERS = {
    "kfc.tnd": lambda: tndiag.ops.kfc((4, 6, 8, 7), (3, 2), stride=2, padding=1, groups=2),
    "kfac_reduce.tnd": lambda: tndiag.ops.kfac_reduce((4, 6, 8, 7), (3, 2), stride=2, padding=1,
                                                      groups=2),
    "kfac_transposed.tnd": lambda: tndiag.ops.kfc((4, 3, 4, 4), 3, stride=2, padding=1,
                                                  transposed=True, output_padding=1),
    "kfac_reduce_transposed.tnd": lambda: tndiag.ops.kfac_reduce(
        (4, 3, 4, 4), 3, stride=2, padding=1, transposed=True, output_padding=1),
    "weight_vjp.tnd": lambda: tndiag.ops.conv_weight_vjp((4, 6, 8, 7), (4, 3, 3, 2), stride=2,
                                                         padding=1, groups=2),
    "input_vjp.tnd": lambda: tndiag.ops.conv_input_vjp((4, 6, 8, 7), (4, 3, 3, 2), stride=2,
                                                       padding=1, groups=2),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_gallery_agrees_with_the_builders(name):
    """The hand-written diagrams and tndiag.ops' derived builders compute the same thing."""
    program = compile(load(name))
    inputs = random_inputs(program)
    built = compile(BUILDERS[name]())
    assert set(built.inputs) == set(program.inputs)
    want = program(**inputs)
    assert torch.allclose(built(**inputs).reshape(want.shape), want, atol=1e-10)
