"""The Gram matrix of a tensor's patches (KFC's input factor) along three routes.

The step (:class:`~tndiag.codegen.lowerings.patch_gram.PatchGram`) computes, for an input
``X[N, G, C, *I]`` arranged from the operand, ``R[g, c, k, c', k'] = Σ_{n, o} Xp[n, g, c,
o·S + k·D] Xp[n, g, c', o·S + k'·D]`` (``Xp`` the zero-padded input, ``k``, ``o`` tuples
over the spatial axes), then permutes ``R`` to the step's result order.

Routes (their applicability and cost live in :mod:`tndiag.codegen.routes` and
:func:`tndiag.codegen.cost.route_seconds`):

- ``unfold`` — the padded input unfolded (a strided view) and copied once into
  ``[G, C·∏K, N·∏O]`` columns, then ``M Mᵀ`` by
  :func:`~tndiag.backends.kernels.symmetric_product` (the row blocks on and above the
  diagonal);
- ``shifted`` — no unfolded copy. The input is copied once, phase-major, into zeros
  ``Y[phase, G, C, Q_1, ..., Q_D, N]`` (position ``k·D + o·S = r + S·q`` lies in phase
  ``r`` at ``q``), so a tap's box of positions is a box of one phase array. The block of taps
  ``(k, k')`` sums over the positions of box ``k`` against those of box ``k'``; blocks with
  the same phases and the same offset between their boxes form a *class* whose boxes are
  translates of each other. One block per class is a *base*: one GEMM of the flat band from
  the box's first to its last element (a plain view, no copy) minus one GEMM per axis level
  of the band's gap runs (the positions between the box's rows, copied: thin). Every other
  block of the class is its neighbour's plus the slab its boxes gain minus the slab they
  lose along one axis (two thin-slab GEMMs). Blocks below the diagonal are the transposes
  of those above it;
- ``batched`` — where the patches are ``X`` itself (1×1, stride 1, no padding): one batched
  GEMM ``X_n X_nᵀ`` over samples and groups, then the sum over samples (no copy).

The plans are literals computed once per step by codegen
(:func:`tndiag.codegen.lowerings.patch_gram.unfold_recipe`,
:func:`~tndiag.codegen.lowerings.patch_gram.shifted_recipe`,
:func:`~tndiag.codegen.lowerings.patch_gram.batched_recipe`); :func:`run_patch_gram` is the
step kernel (the backend's runner and the exported call). This module imports only torch
and another kernel module, so :func:`tndiag.export` writes its text into exported modules.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F

from tndiag.backends.kernels import symmetric_product

__all__ = ["run_patch_gram", "unfold_route", "shifted_route", "batched_route",
           "PATCH_GRAM_ROUTES"]


def _prod(values) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n


def unfold_route(x, recipe):
    """``[G, C·∏K, C·∏K]`` through the unfolded copy and :func:`symmetric_product`."""
    _, _, padding, unfolds, taps, blocks, _ = recipe
    x = _padded(x, padding)
    for axis, size, stride in unfolds:
        x = x.unfold(axis, size, stride)
    if taps is not None:
        x = x[taps]
    N, G, C = x.shape[:3]
    D = len(unfolds)
    # [N, G, C, *O, *K] -> [G, C, *K, N, *O]
    perm = (1, 2, *range(3 + D, 3 + 2 * D), 0, *range(3, 3 + D))
    m = x.permute(perm).reshape(G, C * _prod(x.shape[3 + D:]), -1)
    return symmetric_product(m, blocks)


def _padded(x, padding):
    """``x`` zero-padded (``F.pad``) and cropped (a slice) as the recipe says."""
    pad, crop = padding
    if pad is not None:
        x = F.pad(x, pad)
    return x if crop is None else x[crop]


def _layout(x, layout):
    """The padded input phase-major and flat, ``[P, G, C, ∏Q·N]``: zeros, then each phase's
    input positions (a strided slice of ``x``) copied into place, batch leg last (one pass
    over ``x``, no padded copy first)."""
    phases, Q, moves = layout
    N, G, C = x.shape[:3]
    y = x.new_zeros(*phases, G, C, *Q, N)
    perm = (1, 2, *range(3, 3 + len(Q)), 0)
    for phase, source, target in moves:
        y[tuple(phase) + (slice(None), slice(None)) + tuple(target)] = \
            x[(slice(None),) * 3 + tuple(source)].permute(perm)
    return y.reshape(-1, G, C, N * _prod(Q))


def _offset(q, strides) -> int:
    return sum(a * s for a, s in zip(q, strides))


def _gap_matrix(y, p, start, geometry, level):
    """The band's gap runs of one axis level, copied into ``[G, C, length]``."""
    Q, O, strides, spans = geometry[:4]
    G, C, L = y.shape[1:]
    gap = strides[level] - spans[level + 1]
    size = (G, C, *O[:level], O[level] - 1, gap)
    stride = (C * L, L, *strides[:level + 1], 1)
    where = y.storage_offset() + p * G * C * L + _offset(start, strides) + spans[level + 1]
    return y.as_strided(size, stride, where).reshape(G, C, -1)


def _base(y, geometry, gaps, pa, a, pb, b):
    """One block: the band GEMM minus the gap GEMMs."""
    Q, O, strides, spans = geometry[:4]
    oa, ob = _offset(a, strides), _offset(b, strides)
    A = y[pa, :, :, oa:oa + spans[0]]
    B = y[pb, :, :, ob:ob + spans[0]]
    r = torch.matmul(A, B.transpose(1, 2))
    for level, _ in gaps:
        ga = _gap_matrix(y, pa, a, geometry, level)
        gb = ga if (pa, a) == (pb, b) else _gap_matrix(y, pb, b, geometry, level)
        r = torch.baddbmm(r, ga, gb.transpose(1, 2), alpha=-1)
    return r


def _slab(y, boxes, slabs, p, start, axis, lo, tau, geometry):
    """Positions ``lo:lo+τ`` on ``axis`` of the box at ``start`` as ``[G, C, length]``: a
    view when they are one flat run (every axis but the last one position long), else a
    copy kept in ``slabs`` for the other blocks that need it."""
    Q, O, strides = geometry[:3]
    lengths = [tau if x == axis else o for x, o in enumerate(O)]
    first = list(start)
    first[axis] = lo
    if all(n == 1 for n in lengths[:-1]):
        at = _offset(first, strides)
        return y[p, :, :, at:at + lengths[-1] * strides[-1]]
    key = (p, axis, tuple(first), tau)
    found = slabs.get(key)
    if found is None:
        index: List[Any] = [p, slice(None), slice(None)]
        index += [slice(f, f + n) for f, n in zip(first, lengths)]
        part = boxes[tuple(index)]
        found = slabs[key] = part.reshape(part.shape[0], part.shape[1], -1)
    return found


def _derive(prev, y, boxes, slabs, geometry, pa, a, pb, b, axis, tau):
    """The neighbour's block plus the gained slab's product minus the lost one's."""
    O = geometry[1]
    gain_a = _slab(y, boxes, slabs, pa, a, axis, a[axis] + O[axis], tau, geometry)
    gain_b = _slab(y, boxes, slabs, pb, b, axis, b[axis] + O[axis], tau, geometry)
    lost_a = _slab(y, boxes, slabs, pa, a, axis, a[axis], tau, geometry)
    lost_b = _slab(y, boxes, slabs, pb, b, axis, b[axis], tau, geometry)
    r = torch.baddbmm(prev, gain_a, gain_b.transpose(1, 2))
    return torch.baddbmm(r, lost_a, lost_b.transpose(1, 2), alpha=-1)


def shifted_route(x, recipe):
    """``R[G, C, ∏K, C, ∏K]`` from class bases and slab corrections (no unfolded copy)."""
    _, _, layout, geometry, blocks, (rows, cols, above), _ = recipe
    Q, gaps, taps = geometry[0], geometry[4], geometry[5]
    y = _layout(x, layout)
    P, G, C, _ = y.shape
    boxes = y.view(P, G, C, *Q, -1)
    slabs: Dict[tuple, torch.Tensor] = {}
    done: Dict[Tuple[int, int], torch.Tensor] = {}
    for block in blocks:
        if block[0] == "base":
            (pa, a), (pb, b) = block[3], block[4]
            part = _base(y, geometry, gaps, pa, a, pb, b)
        else:
            (pa, a), (pb, b), axis, tau = block[4], block[5], block[6], block[7]
            part = _derive(done[block[3]], y, boxes, slabs, geometry, pa, a, pb, b, axis, tau)
        done[(block[1], block[2])] = part
    parts = torch.stack(list(done.values()))  # [blocks, G, C, C], in plan order
    r = y.new_empty(taps, taps, G, C, C)
    i, j, off = torch.tensor(rows), torch.tensor(cols), torch.tensor(above, dtype=torch.long)
    r[i, j] = parts
    r[j[off], i[off]] = parts[off].transpose(2, 3)
    return r.permute(2, 3, 0, 4, 1)


def batched_route(x, recipe):
    """``Σ_n X_n X_nᵀ`` per group: one batched GEMM over samples and groups, then the sum
    over samples (``X`` is its own patches: 1×1, stride 1, no padding)."""
    N, G, C = x.shape[:3]
    m = x.reshape(N, G, C, -1)
    return torch.matmul(m, m.transpose(2, 3)).sum(0)


#: Route name -> kernel ``(arranged input, recipe) -> R`` (``R``: ``[G, C·∏K, C·∏K]`` or
#: ``[G, C, ∏K, C, ∏K]``, the same elements).
PATCH_GRAM_ROUTES = {"unfold": unfold_route, "shifted": shifted_route,
                     "batched": batched_route}


def run_patch_gram(recipe, taken):
    """The step kernel: arrange the operand, run the route, shape and permute the result.

    >>> x = torch.randn(2, 1, 3, 4, 4, dtype=torch.float64)  # [N, G, C, *I], a 1×1 kernel
    >>> r = run_patch_gram(("batched", (None, (2, 1, 3, 4, 4)), ((1, 3, 3), None)), [x])
    >>> torch.allclose(r[0], torch.einsum("ncij,ndij->cd", x[:, 0], x[:, 0]))
    True
    """
    route, (perm, shape) = recipe[0], recipe[1]
    x = taken[0]
    if perm is not None:
        x = x.permute(perm)
    x = x.reshape(shape)
    out_shape, out_perm = recipe[-1]
    r = PATCH_GRAM_ROUTES[route](x, recipe).reshape(out_shape)
    return r if out_perm is None else r.permute(out_perm)
