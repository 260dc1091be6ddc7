"""``python -m tndiag``: the same as the ``tndiag`` command."""

from tndiag.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
