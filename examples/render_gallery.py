"""Render every diagram of the gallery (``examples/*.tnd``) to SVG with the ``tndiag`` CLI.

Run: ``python examples/render_gallery.py [OUT_DIR] [--sizes]`` (default ``out/gallery``).
Each ``NAME.tnd`` becomes ``OUT_DIR/NAME.svg`` through ``tndiag render``, exactly as on the
command line, and ``OUT_DIR/index.html`` shows every picture above its source. Exits with
status 1 if any file fails, after trying them all.
"""

from __future__ import annotations

import html
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
    write_index(out_dir)
    return written


def write_index(out_dir: Path) -> Path:
    """``index.html``: every picture with the diagram's source text under it."""
    parts = ["<!doctype html><meta charset='utf-8'><title>tndiag gallery</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
             "pre{background:#f6f6f6;padding:.5em;overflow:auto}img{max-width:100%}</style>",
             "<h1>tndiag gallery</h1>"]
    for source in gallery():
        parts += [f"<h2 id='{source.stem}'>{source.stem}</h2>",
                  f"<img src='{source.stem}.svg' alt='{source.stem}'>",
                  f"<pre>{html.escape(source.read_text(encoding='utf-8'))}</pre>"]
    index = out_dir / "index.html"
    index.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return index


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
