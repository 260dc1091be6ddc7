"""Render every diagram of the gallery (``examples/*.tnd``) to SVG with the ``tndiag`` CLI.

Run: ``python examples/render_gallery.py [OUT_DIR] [--sizes]`` (default ``out/gallery``).
Each ``NAME.tnd`` becomes ``OUT_DIR/NAME.svg`` through ``tndiag render``, exactly as on the
command line. Exits with status 1 if any file fails, after trying them all.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
try:
    import tndiag  # noqa: F401
except ModuleNotFoundError:  # run from a source checkout without installing tndiag
    sys.path.insert(0, str(HERE.parent))

from tndiag.cli import main as tndiag_main  # noqa: E402


def gallery() -> List[Path]:
    """The gallery's ``.tnd`` files, sorted by name."""
    return sorted(HERE.glob("*.tnd"))


def render_all(out_dir: Path, sizes: bool = False) -> List[Path]:
    """Render every gallery file into ``out_dir``; return the SVG paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, failed = [], []
    for source in gallery():
        target = out_dir / f"{source.stem}.svg"
        argv = ["render", str(source), "-o", str(target)] + (["--sizes"] if sizes else [])
        if tndiag_main(argv) == 0:
            written.append(target)
            print(f"{source.name:<28} -> {target}")
        else:
            failed.append(source.name)
    if failed:
        raise SystemExit(f"failed to render: {', '.join(failed)}")
    return written


def main(argv: List[str] | None = None) -> int:
    """Command-line entry: ``[OUT_DIR] [--sizes]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    sizes = "--sizes" in args
    rest = [a for a in args if a != "--sizes"]
    out_dir = Path(rest[0]) if rest else HERE.parent / "out" / "gallery"
    render_all(out_dir, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
