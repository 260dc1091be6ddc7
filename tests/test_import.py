"""``import tndiag`` stays light: torch, graphviz and lark load only when a feature needs them."""

import subprocess
import sys

HEAVY = ("torch", "graphviz", "lark")


def _loaded_after(statement: str) -> set:
    code = (f"import sys; {statement}; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


def test_import_tndiag_imports_no_heavy_dependency():
    assert _loaded_after("import tndiag") == set()


def test_builders_and_compile_need_no_torch():
    loaded = _loaded_after("import tndiag; tndiag.compile(tndiag.ops.conv((1, 2, 5), (3, 2, 3)))")
    assert loaded == set()


def test_functional_loads_torch_lazily():
    assert "torch" in _loaded_after("import tndiag; tndiag.functional.conv")
    assert "torch" in _loaded_after("import tndiag; tndiag.nn.Conv2d")
