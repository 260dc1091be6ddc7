"""Every Python block of README.md runs as written (examples must not rot)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # later blocks build on names defined by earlier ones
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["y"].shape == (8, 6, 16, 16)
    assert namespace["svg"].lstrip().startswith("<?xml")
    assert "import tndiag" not in namespace["source"]
