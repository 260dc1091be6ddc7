"""A non-editable install (a built wheel) ships the grammar, so ``parse`` works from it."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a build needs (README.md is the long description); the grammar symlink comes along.
SOURCES = ["setup.cfg", "pyproject.toml", "README.md", "tndiag", "grammars"]

CHECK = """
import sys
import tndiag
from tndiag.syntax import GRAMMAR_PATH
assert tndiag.__file__.startswith(sys.argv[1]), tndiag.__file__
assert GRAMMAR_PATH.is_file() and not GRAMMAR_PATH.is_symlink(), GRAMMAR_PATH
assert str(GRAMMAR_PATH).startswith(sys.argv[1]), GRAMMAR_PATH
g = tndiag.parse('''
index n: 2, ci: 3, co: 4, i1: 8, k1: 3
X : input [n, ci, i1]
W : parameter [co, ci, k1]
P1 = pattern(i1 -> o1, k1; stride=2)
Y[n, co, o1] = X * P1 * W
''')
assert g == tndiag.ops.conv((2, 3, 8), (4, 3, 3), stride=2), g
print("parsed", g.output_shape)
"""


def _pip(*args, cwd):
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, cwd=cwd,
                   capture_output=True, text=True)


@pytest.mark.slow
def test_a_built_wheel_ships_the_grammar_and_parses(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    assert (src / "grammars" / "tndiag.lark").is_symlink()
    wheels, target = tmp_path / "wheels", tmp_path / "target"
    # --no-build-isolation: build offline with the venv's setuptools
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src), cwd=tmp_path)
    (wheel,) = wheels.glob("tndiag-*.whl")
    assert "tndiag/grammars/tndiag.lark" in zipfile.ZipFile(wheel).namelist()
    _pip("install", "--no-deps", "--target", str(target), str(wheel), cwd=tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(target), sysconfig.get_paths()["purelib"]]))
    out = subprocess.run([sys.executable, "-c", CHECK, str(target)], cwd=tmp_path, env=env,
                         check=True, capture_output=True, text=True).stdout
    assert "parsed (2, 4, 3)" in out
