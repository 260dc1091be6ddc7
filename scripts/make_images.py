"""Draw the pictures of README.md and docs/ from the example diagrams (tests run this script).

Run: ``python scripts/make_images.py [OUT_DIR]`` (default: ``docs/images`` of the checkout).
Every picture is listed in :data:`PICTURES` with the ``tndiag render`` arguments that draw
it, so the committed files can always be regenerated and compared.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # draw with this checkout's tndiag, installed or not

from tndiag.cli import main as tndiag_main  # noqa: E402

#: file name -> arguments of ``tndiag render`` (paths relative to the repository root)
PICTURES: Dict[str, List[str]] = {
    "forward.svg": ["examples/forward.tnd"],
    "kfc.svg": ["examples/kfc.tnd"],
    "kernel-unfold-sizes.svg": ["examples/kernel_unfold.tnd", "--sizes"],
    "kfac-reduce-simplify.svg": ["examples/kfac_reduce.tnd", "--pipeline", "simplify",
                                 "--trace"],
    "weight-vjp-derive.svg": ["examples/forward.tnd", "--pipeline",
                              "vjp{wrt=W,vector=V},simplify", "--trace"],
}


def make_images(out_dir: Path) -> List[Path]:
    """Draw every picture of :data:`PICTURES` into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, args in PICTURES.items():
        source, *options = args
        target = out_dir / name
        code = tndiag_main(["render", str(ROOT / source), *options, "-o", str(target)])
        if code != 0:
            raise SystemExit(f"make_images: drawing {name} failed")
        written.append(target)
    return written


def main(argv: List[str] | None = None) -> int:
    """Command-line entry: ``[OUT_DIR]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    out_dir = Path(args[0]) if args else ROOT / "docs" / "images"
    for path in make_images(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
