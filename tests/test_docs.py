"""The docs stand alone and show only real output.

- no file of the repository cites the shared notes (``PAPER.md``);
- user-facing docs read like documentation, not a lab notebook: no issue numbers, no paths
  outside the repository, no "this machine";
- every ``>>>`` example in ``docs/*.md`` runs and prints what it shows (doctest);
- every ``$ ...`` line of a ``console`` block shows what the command prints (regenerate
  them with ``TNDIAG_UPDATE_DOCS=1 pytest tests/test_docs.py``).
"""

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UPDATE = os.environ.get("TNDIAG_UPDATE_DOCS") == "1"

#: Measurement reports keep their own provenance lines (command, machine); checked elsewhere.
REPORTS = {"docs/benchmarks.md", "docs/paper-results.md"}
DOCS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
USER_FACING = ["README.md", *(d for d in DOCS if d not in REPORTS)]
TRANSCRIPT = re.compile(r"```console\n(\$ .*?)```", re.S)


def _tracked_text_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in names:
        path = ROOT / name
        if path.is_file() and path.suffix not in (".png", ".pdf"):
            try:
                yield name, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def test_nothing_cites_the_shared_notes():
    offenders = [name for name, text in _tracked_text_files()
                 if "PAPER" + ".md" in text and name != "tests/test_docs.py"]
    assert offenders == []


_NOTEBOOK_WORDS = [
    (re.compile(r"\bissues? #?\d+", re.I), "an issue number"),
    (re.compile(r"(?<![\w.])/(work|home|tmp|root)/"), "a path outside the repository"),
    (re.compile(r"\.\./shared"), "a path outside the repository"),
    (re.compile(r"\bthis machine\b", re.I), "'this machine'"),
]


@pytest.mark.parametrize("name", USER_FACING + ["notebooks/01-diagrams.ipynb"])
def test_docs_do_not_read_like_a_lab_notebook(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    found = [(what, m.group(0)) for pattern, what in _NOTEBOOK_WORDS
             for m in pattern.finditer(text)]
    assert found == [], f"{name}: {found}"


@pytest.mark.parametrize("name", [d for d in DOCS if ">>>" in (ROOT / d).read_text("utf-8")])
def test_doc_examples_print_what_they_show(name):
    import tndiag

    text = (ROOT / name).read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:python|pycon)\n(>>>.*?)```", text, flags=re.S)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {"tndiag": tndiag}
    for k, block in enumerate(blocks):  # later blocks may use names of earlier ones
        test = parser.get_doctest(block, globs, f"{name} block {k}", name, 0)
        assert runner.run(test).failed == 0, f"{name}: example block {k} prints something else"


def _run_transcript(command: str) -> str:
    shell = (f'tndiag() {{ "{sys.executable}" -m tndiag "$@"; }}\n'
             f"{command}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    done = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)
    return (done.stdout + done.stderr).rstrip()


def _transcript(block: str):
    """(command, shown output) for every ``$ ...`` line of one transcript block."""
    parts = re.split(r"^\$ (.*)\n", block, flags=re.M)
    return [(c, shown.rstrip()) for c, shown in zip(parts[1::2], parts[2::2], strict=True)]


@pytest.mark.parametrize("name", [d for d in ["README.md", *DOCS]
                                  if TRANSCRIPT.search((ROOT / d).read_text("utf-8"))])
def test_transcripts_show_what_the_command_prints(name):
    path = ROOT / name
    text = path.read_text(encoding="utf-8")
    for block in TRANSCRIPT.findall(text):
        runs = [(command, shown, _run_transcript(command)) for command, shown in
                _transcript(block)]
        if UPDATE:
            fresh = "".join(f"$ {c}\n" + (f"{out}\n" if out else "") for c, _, out in runs)
            text = text.replace(block, fresh, 1)
            continue
        for command, shown, printed in runs:
            assert printed == shown, f"{name}: `{command}` prints\n{printed}"
    if UPDATE:
        path.write_text(text, encoding="utf-8")


def _svg_structure(path: Path):
    """Node and edge titles and all text of an SVG drawn by graphviz (layout-free)."""
    import xml.etree.ElementTree as ET

    ns = {"svg": "http://www.w3.org/2000/svg"}
    root = ET.parse(path).getroot()
    titles = sorted(t.text or "" for t in root.iterfind(".//svg:g/svg:title", ns))
    texts = sorted(t.text or "" for t in root.iterfind(".//svg:text", ns))
    return titles, texts


def test_pictures_are_regenerated_by_the_script(tmp_path):
    """scripts/make_images.py redraws docs/images; the committed pictures still match."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_images.py"),
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    fresh = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert fresh == sorted(p.name for p in (ROOT / "docs" / "images").glob("*.svg"))
    for name in fresh:
        assert _svg_structure(tmp_path / name) == _svg_structure(ROOT / "docs/images" / name), (
            f"docs/images/{name} is stale: run python scripts/make_images.py")


def test_every_picture_is_shown_somewhere():
    shown = "".join((ROOT / d).read_text("utf-8") for d in ["README.md", *DOCS])
    for path in (ROOT / "docs" / "images").glob("*.svg"):
        assert f"images/{path.name}" in shown, path.name
