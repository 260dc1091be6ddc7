"""README.md: every Python block runs as written, every ``pycon`` block's output is real."""

import doctest
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(kind: str):
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_blocks_run():
    blocks = _blocks("python")
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # later blocks build on names defined by earlier ones
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["y"].shape == (8, 6, 16, 16)
    assert namespace["svg"].lstrip().startswith("<?xml")
    assert "import tndiag" not in namespace["source"]


def test_readme_shown_output_is_what_tndiag_prints():
    import tndiag

    blocks = _blocks("pycon")
    assert blocks
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=0)
    for k, block in enumerate(blocks):
        test = parser.get_doctest(block, {"tndiag": tndiag}, f"README pycon {k}", str(README), 0)
        result = runner.run(test)
        assert result.failed == 0, f"README pycon block {k} shows output tndiag does not print"


def test_readme_links_the_paper_pictures_and_files():
    text = README.read_text(encoding="utf-8")
    assert "https://arxiv.org/abs/2307.02275" in text and "@inproceedings{" in text
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / image).is_file(), image
    for name in ("LICENSE", "CHANGELOG.md", "CITATION.cff", "tndiag/py.typed",
                 "docs/method.md"):
        assert (ROOT / name).is_file(), name
    for doc in re.findall(r"`(docs/[\w.-]+\.md)`", text):
        assert (ROOT / doc).is_file(), doc
