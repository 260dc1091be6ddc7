"""What an exported term computes: operands, index patterns turned into strided windows, steps.

With ``lowering="window"`` (the default of :func:`tndiag.export`), a pattern Π[i, o, k] whose
``i`` leg sits on exactly one other tensor T (and not on the output) is not built: T's ``i``
axis is zero-padded and viewed as ``[O, K]`` windows (``Tensor.unfold``, a view), exactly
``Σ_i T[.., i, ..] Π[i, o, k]``. The remaining operands are contracted pairwise along an
``opt_einsum`` path computed at export time. With ``lowering="dense"`` every Π is a dense
0/1 tensor and the steps are the compiled program's (as einsums).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Set, Tuple

from tndiag.codegen.program import Operand, Program
from tndiag.errors import InvalidArgumentError
from tndiag.ir import Kind

__all__ = ["Entry", "TermPlan", "plan_term", "WINDOW_HELPER", "LOWERING_MODES"]

LOWERING_MODES = ("window", "dense")

WINDOW_HELPER = '''
def window(x: torch.Tensor, axis: int, K: int, stride: int, pad_left: int, pad_right: int,
           dilation: int) -> torch.Tensor:
    """View axis ``axis`` of ``x`` (size I) as windows: a new axis of O positions there and a
    last axis of K taps, ``out[.., o, .., k] = padded[.., o*stride + k*dilation, ..]``.

    This is ``x`` contracted with the index pattern of (stride, padding, dilation), without
    building the pattern: the zero padding is explicit, the windows are a strided view.
    """
    pads = [0, 0] * (x.dim() - axis - 1) + [pad_left, pad_right]
    x = torch.nn.functional.pad(x, pads)
    windows = x.unfold(axis, (K - 1) * dilation + 1, stride)
    return windows[..., ::dilation]
'''


@dataclass
class Entry:
    """One operand of the exported term: a Python variable, its subscripts and shape."""

    var: str
    letters: str
    shape: Tuple[int, ...]
    name: str
    pattern: Optional[Operand] = None


@dataclass
class TermPlan:
    """The exported form of one term: setup lines, then steps over ``operands``."""

    setup: List[str]
    operands: List[str]
    steps: List[Tuple[Tuple[int, ...], str]]
    path: Tuple[Tuple[int, ...], ...]
    flops: int
    largest: int
    windows: List[str] = field(default_factory=list)
    helpers: Set[str] = field(default_factory=set)


def _holder(p: int, entries: Sequence[Optional[Entry]], out: str) -> Optional[int]:
    """The one non-pattern operand a pattern can become a window of, if there is one."""
    i, o, k = entries[p].letters  # type: ignore[union-attr]
    if len({i, o, k}) != 3 or i in out:
        return None
    holders = [q for q, e in enumerate(entries) if e is not None and q != p and i in e.letters]
    if len(holders) != 1:
        return None
    h = entries[holders[0]]
    if h is None or h.pattern is not None or h.letters.count(i) != 1 or o in h.letters or \
            k in h.letters:
        return None
    return holders[0]


def _windows(entries: List[Optional[Entry]], out: str, setup: List[str]) -> List[str]:
    """Replace every pattern that has a holder by a window of the holder; return their names."""
    done: List[str] = []
    for p, e in enumerate(entries):
        if e is None or e.pattern is None:
            continue
        q = _holder(p, entries, out)
        if q is None:
            continue
        h, params = entries[q], e.pattern.tensor.pattern_params
        i, o, k = e.letters
        axis = h.letters.index(i)  # type: ignore[union-attr]
        letters = h.letters[:axis] + o + h.letters[axis + 1:] + k  # type: ignore[union-attr]
        shape = h.shape[:axis] + (e.shape[1],) + h.shape[axis + 1:] + (e.shape[2],)  # type: ignore
        var = f"_w{len(done)}"  # windows chain: X through P1, then through P2
        setup.append(f"{var} = window({h.var}, {axis}, {e.shape[2]}, {params.stride}, "  # type: ignore
                     f"{params.pad_left}, {params.pad_right}, {params.dilation})"
                     f"  # {letters}: {h.name} through {e.name}")  # type: ignore[union-attr]
        entries[q] = Entry(var, letters, shape, h.name)  # type: ignore[union-attr]
        entries[p] = None
        done.append(e.name)
    return done


def _steps(letters: List[str], path, out: str) -> List[Tuple[Tuple[int, ...], str]]:
    current, steps = list(letters), []
    for n, positions in enumerate(path):
        positions = tuple(sorted(positions))
        taken = [current[p] for p in positions]
        for p in reversed(positions):
            current.pop(p)
        keep = set("".join(current)) | set(out)
        result = out if n == len(path) - 1 else "".join(
            dict.fromkeys(ch for ch in "".join(taken) if ch in keep))
        steps.append((positions, ",".join(taken) + "->" + result))
        current.append(result)
    return steps


def _contract(entries: List[Entry], out: str):
    import opt_einsum

    letters = [e.letters for e in entries]
    if len(entries) == 1:
        numel = 1
        for s in entries[0].shape:
            numel *= s
        return ((0,),), numel, numel
    path, info = opt_einsum.contract_path(",".join(letters) + "->" + out,
                                          *[e.shape for e in entries], shapes=True,
                                          optimize="auto-hq")
    return tuple(tuple(p) for p in path), int(info.opt_cost), int(info.largest_intermediate)


def plan_term(program: Program, expr_of: Callable[[Operand], Tuple[str, str]],
              lowering: str) -> TermPlan:
    """Plan one term; ``expr_of(operand)`` gives ``(helper needed, Python expression)``.

    >>> from tndiag import compile, ops
    >>> program = compile(ops.conv((1, 2, 6), (3, 2, 3)), lowerings=())
    >>> plan = plan_term(program, lambda op: ("", op.name), "window")
    >>> plan.windows, plan.steps
    (['P1'], [((0, 1), 'abde,fbe->afd')])
    >>> plan.setup[-1]
    '_w0 = window(_x0, 2, 3, 1, 0, 0, 1)  # abde: X through P1'
    """
    if lowering not in LOWERING_MODES:
        raise InvalidArgumentError(f"lowering must be one of {list(LOWERING_MODES)}, "
                                   f"got {lowering!r}")
    entries: List[Optional[Entry]] = []
    for n, op in enumerate(program.operands):
        is_pattern = op.tensor.kind is Kind.PATTERN
        entries.append(Entry(f"_x{n}", op.letters, tuple(int(s) for s in op.shape), op.name,
                             op if is_pattern else None))
    out = program.equation.split("->")[1]
    window_lines: List[str] = []
    windows = _windows(entries, out, window_lines) if lowering == "window" else []
    plan = TermPlan([], [], [], (), 0, 0, windows)
    for n, (op, e) in enumerate(zip(program.operands, entries)):
        if e is None:
            continue
        helper, expr = expr_of(op)
        if helper:
            plan.helpers.add(helper)
        plan.setup.append(f"_x{n} = {expr}  # {op.letters or 'scalar'}: {op.name}")
    plan.setup += window_lines
    kept = [e for e in entries if e is not None]
    plan.operands = [e.var for e in kept]
    if lowering == "dense":
        plan.steps = [(tuple(s.positions), s.equation) for s in program.steps]
        plan.path = program.path
        plan.flops, plan.largest = int(program.flops), int(program.largest_intermediate)
        return plan
    plan.path, plan.flops, plan.largest = _contract(kept, out)
    plan.steps = _steps([e.letters for e in kept], plan.path, out)
    return plan
