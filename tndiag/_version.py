"""The one version string of tndiag (read by setup.cfg, ``tndiag.__version__`` and the CLI)."""

__version__ = "0.1.0"
