"""The tuning mode and the cache of measured route winners (a small JSON file, no torch here).

``set_tuning("model")`` (the default) lets the cost model choose each step's route,
``"measure"`` makes the backend time every route of a step once per (step, dtype, device,
thread count, torch version) on first use and keep the fastest, ``"off"`` runs the default
routes (torch's own kernels, one sum per tap). Measured winners persist across processes in
``tuning.json`` under ``platformdirs.user_cache_dir("tndiag")`` (``$XDG_CACHE_HOME/tndiag`` on
Linux); an entry measured under another torch version is dropped when its step is measured
again, and one measured on another device never matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from tndiag.errors import InvalidArgumentError

__all__ = ["MODES", "set_tuning", "get_tuning", "on_change", "cache_path", "step_key",
           "lookup", "record", "measurements", "clear"]

#: The tuning modes (see the module docstring).
MODES = ("measure", "model", "off")
_STATE = {"mode": "model"}
_LISTENERS: List[Callable[[], None]] = []
_LOADED: Dict[str, Tuple[float, dict]] = {}


def set_tuning(mode: str) -> None:
    """Set the global tuning mode: ``"measure"``, ``"model"`` (default) or ``"off"``.

    Programs compiled afterwards follow it (``compile(..., tune=...)`` overrides it).

    >>> set_tuning("off"); get_tuning()
    'off'
    >>> set_tuning("model")
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"set_tuning: mode must be one of {list(MODES)}, got {mode!r}")
    if mode != _STATE["mode"]:
        _STATE["mode"] = mode
        for forget in _LISTENERS:
            forget()


def on_change(forget: Callable[[], None]) -> None:
    """Call ``forget`` whenever the mode changes (layers above keep caches of programs
    compiled for the old mode; e.g. ``tndiag.functional`` registers its ``cache_clear``)."""
    _LISTENERS.append(forget)


def get_tuning() -> str:
    """The global tuning mode (see :func:`set_tuning`).

    >>> get_tuning() in MODES
    True
    """
    return _STATE["mode"]


def cache_path() -> Path:
    """Where measured winners are kept (``XDG_CACHE_HOME`` is honoured).

    >>> cache_path().name
    'tuning.json'
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir("tndiag")) / "tuning.json"


def step_key(step) -> str:
    """A stable key of a step's kind, equation, description and input size, equal across
    processes; a bias fused into the step does not change it (it barely changes the time).

    >>> from tndiag.codegen.program import Step
    >>> step_key(Step((0, 1), "ab,bc->ac")) == step_key(Step((0, 1), "ab,bc->ac"))
    True
    """
    info = step.info
    if getattr(info, "bias", ""):
        info = dataclasses.replace(info, bias="", bias_scale=1.0)
    text = repr((step.kind.value, step.equation.split(" + ")[0], info,
                 step.flops if step.kind.value == "window-sum" else None))
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _load() -> dict:
    path = cache_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    found = _LOADED.get(str(path))
    if found is not None and found[0] == mtime:
        return found[1]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    entries = data.get("entries", {}) if isinstance(data, dict) else {}
    _LOADED[str(path)] = (mtime, entries)
    return entries


def lookup(step, context: Dict[str, object]) -> Optional[str]:
    """The measured winner of ``step`` in ``context`` (dtype, device, threads, torch), or None."""
    entry = _load().get(step_key(step), {}).get(_context_key(context))
    return entry["winner"] if isinstance(entry, dict) and "winner" in entry else None


def record(step, context: Dict[str, object], times: Dict[str, float],
           skipped: Optional[Dict[str, int]] = None) -> str:
    """Store the seconds per route measured for ``step`` in ``context`` (and the routes left
    unmeasured, with their temporaries' bytes); returns the winner.

    Entries of the same step measured under another torch version are dropped.
    """
    winner = min(times, key=times.__getitem__)
    entries = dict(_load())
    per_step = {k: v for k, v in entries.get(step_key(step), {}).items()
                if isinstance(v, dict) and v.get("torch") == context.get("torch")}
    per_step[_context_key(context)] = dict(context, label=step.label, winner=winner,
                                           times={r: float(t) for r, t in times.items()},
                                           skipped={r: int(b) for r, b in (skipped or {}).items()})
    entries[step_key(step)] = per_step
    _write(entries)
    return winner


def measurements(step) -> List[Dict[str, Any]]:
    """Every stored measurement of ``step`` (one per context), for printing.

    >>> from tndiag.codegen.program import Step
    >>> measurements(Step((0,), "a->a", info="never measured"))
    []
    """
    found = _load().get(step_key(step), {})
    return [v for _, v in sorted(found.items()) if isinstance(v, dict) and "times" in v]


def clear() -> None:
    """Delete the cache file (every measured winner)."""
    path = cache_path()
    _LOADED.pop(str(path), None)
    if path.exists():
        path.unlink()


def _context_key(context: Dict[str, object]) -> str:
    return "|".join(f"{k}={context[k]}" for k in sorted(context))


def _write(entries: dict) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tuning-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"format": 1, "entries": entries}, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    _LOADED.pop(str(path), None)
