"""References for model-level curvature, written from the definitions with plain torch.

Unfolded inputs come from torch's own (transposed) convolutions with one-hot kernels, loss
Hessians from ``torch.autograd.functional.hessian`` and their square roots from ``eigh``,
output gradients from one ``autograd.grad`` per column, the GGN from full Jacobians.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import nn

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
          nn.ConvTranspose3d)


def unfolded(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[N, C_in·∏K, T]``: rows (c, k) such that the layer's output is ``W_matrix @ U``."""
    if isinstance(m, nn.Linear):
        return x.reshape(x.shape[0], -1, x.shape[-1]).transpose(1, 2)
    ndim, K = x.dim() - 2, tuple(m.kernel_size)
    C, taps = x.shape[1], math.prod(K)
    eye = torch.eye(taps, dtype=x.dtype).reshape(taps, *K)
    transposed = isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    if transposed:
        w = eye.unsqueeze(0).repeat(C, 1, *([1] * ndim))  # [C, taps, *K]
        f = getattr(nn.functional, f"conv_transpose{ndim}d")
        u = f(x, w, stride=m.stride, padding=m.padding, output_padding=m.output_padding,
              dilation=m.dilation, groups=C)
    else:
        w = eye.unsqueeze(1).repeat(C, 1, *([1] * ndim))  # [C·taps, 1, *K]
        if m.padding_mode != "zeros":
            x = nn.functional.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
            padding = 0
        else:
            padding = m.padding
        f = getattr(nn.functional, f"conv{ndim}d")
        u = f(x, w, stride=m.stride, padding=padding, dilation=m.dilation, groups=C)
    return u.flatten(2)


def groups(m: nn.Module) -> int:
    return 1 if isinstance(m, nn.Linear) else m.groups


def layer_io(model: nn.Module, x: torch.Tensor):
    """Inputs and outputs of every supported layer (outputs keep their autograd graph)."""
    seen: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, LAYERS):
            def hook(mod, args, out, name=name):
                out = out.clone()  # survives in-place ops that follow
                seen[name] = (args[0].detach(), out)
                return out
            hooks.append(m.register_forward_hook(hook))
    try:
        f = model(x)
    finally:
        for h in hooks:
            h.remove()
    return f, seen


def reduction(loss_fn, f) -> float:
    if loss_fn.reduction == "sum":
        return 1.0
    return 1.0 / (f.shape[0] if isinstance(loss_fn, nn.CrossEntropyLoss) else f.numel())


def _per_sample_loss(loss_fn, fn, yn):
    kind = type(loss_fn)(reduction="sum")
    return kind(fn.unsqueeze(0), yn.unsqueeze(0))


def columns(loss_fn, f, y, fisher_type, mc_samples=1, generator=None) -> torch.Tensor:
    """``[Z, N, *f.shape[1:]]`` with ``Σ_z S Sᵀ = R·∇²ℓ_n`` (or its MC / empirical version)."""
    f = f.detach()
    R, N = reduction(loss_fn, f), f.shape[0]
    cols = []
    if fisher_type == "type-2":
        for n in range(N):
            H = torch.autograd.functional.hessian(
                lambda fn, n=n: _per_sample_loss(loss_fn, fn.reshape(f.shape[1:]), y[n]),
                f[n].reshape(-1))
            evals, evecs = torch.linalg.eigh(R * H)
            cols.append((evecs * evals.clamp(min=0).sqrt()).T.reshape(-1, *f.shape[1:]))
        return torch.stack(cols, 1)
    if fisher_type == "empirical":
        labels = y.unsqueeze(0)
    elif isinstance(loss_fn, nn.CrossEntropyLoss):
        labels = torch.multinomial(f.softmax(1), mc_samples, replacement=True,
                                   generator=generator).T
    else:  # the Gaussian whose negative log-likelihood is (f - y)²
        noise = torch.randn((mc_samples, *f.shape), dtype=f.dtype, generator=generator)
        labels = f + noise / math.sqrt(2.0)
    scale = math.sqrt(R / labels.shape[0])
    for lab in labels:
        fr = f.clone().requires_grad_(True)
        loss = type(loss_fn)(reduction="sum")(fr, lab)
        cols.append(scale * torch.autograd.grad(loss, fr)[0])
    return torch.stack(cols)


def output_grads(f, outs: List[torch.Tensor], S: torch.Tensor) -> List[torch.Tensor]:
    """``[Z, *out.shape]`` per layer: one backward per column of ``S``."""
    per = [[] for _ in outs]
    for z in range(S.shape[0]):
        gs = torch.autograd.grad(f, outs, S[z], retain_graph=True, allow_unused=True)
        for lst, g, o in zip(per, gs, outs, strict=True):
            lst.append(torch.zeros_like(o) if g is None else g)
    return [torch.stack(p) for p in per]


def kfac_ref(model, loss_fn, x, y, approx, fisher_type, merged=False, mc_samples=1,
             generator=None):
    """name → (A [G, d_in, d_in], B [G, d_out, d_out]) from the definitions."""
    f, io = layer_io(model, x)
    S = columns(loss_fn, f, y, fisher_type, mc_samples, generator)
    grads = output_grads(f, [o for _, o in io.values()], S)
    out = {}
    for (name, (inp, _)), g in zip(io.items(), grads, strict=True):
        m = model.get_submodule(name)
        G, U = groups(m), unfolded(m, inp)
        if merged and m.bias is not None:
            U = torch.cat([U.reshape(U.shape[0], G, -1, U.shape[-1]),
                           torch.ones(U.shape[0], G, 1, U.shape[-1], dtype=U.dtype)], 2)
        U = U.reshape(U.shape[0], G, -1, U.shape[-1])
        if isinstance(m, nn.Linear):
            g = g.reshape(g.shape[0] * g.shape[1], -1, g.shape[-1]).transpose(1, 2)
        else:
            g = g.flatten(0, 1).flatten(2)
        s = g.reshape(g.shape[0], G, -1, g.shape[-1])
        N, T = U.shape[0], U.shape[-1]
        if approx == "expand":
            A = torch.einsum("ngit,ngjt->gij", U, U) / (N * T)
            B = torch.einsum("mgit,mgjt->gij", s, s)
        else:
            u, v = U.mean(-1), s.sum(-1)
            A = torch.einsum("ngi,ngj->gij", u, u) / N
            B = torch.einsum("mgi,mgj->gij", v, v)
        out[name] = (A, B)
    return out


def flat_positions(m: nn.Module, offset: int, merged: bool):
    """Per block ``(kind, [G, d_out, d_in] flat parameter positions)``, from explicit loops."""
    G = groups(m)
    w = m.weight
    if isinstance(m, nn.Linear):
        pos = [[[offset + r * w.shape[1] + c for c in range(w.shape[1])]
                for r in range(w.shape[0])]]
    elif isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        Cig, Cog, taps = w.shape[0] // G, w.shape[1], math.prod(w.shape[2:])
        pos = [[[offset + ((g * Cig + ci) * Cog + co) * taps + k
                 for ci in range(Cig) for k in range(taps)] for co in range(Cog)]
               for g in range(G)]
    else:
        Cog, Cig, taps = w.shape[0] // G, w.shape[1], math.prod(w.shape[2:])
        pos = [[[offset + ((g * Cog + co) * Cig + ci) * taps + k
                 for ci in range(Cig) for k in range(taps)] for co in range(Cog)]
               for g in range(G)]
    pos = torch.tensor(pos)
    if m.bias is not None:
        d = m.bias.numel() // G
        bpos = torch.tensor([[[offset + w.numel() + g * d + r] for r in range(d)]
                             for g in range(G)])
        if merged:
            return [("weight", torch.cat([pos, bpos], 2))]
        return [("weight", pos), ("bias", bpos)]
    return [("weight", pos)]


def dense_ref(model, factors, merged) -> torch.Tensor:
    """The block-diagonal Kronecker matrix over all parameters, in parameter order."""
    P = sum(p.numel() for p in model.parameters())
    D = torch.zeros(P, P, dtype=torch.float64)
    offset = 0
    for name, m in model.named_modules():
        if not isinstance(m, LAYERS):
            continue
        A, B = factors[name]
        for kind, pos in flat_positions(m, offset, merged):
            for g in range(pos.shape[0]):
                Ag = A[g] if kind == "weight" else torch.ones(1, 1, dtype=A.dtype)
                rows = pos[g].reshape(-1)
                D[rows[:, None], rows[None, :]] = torch.kron(B[g], Ag)
        offset += sum(p.numel() for p in m.parameters(recurse=False))
    return D


def ggn_diag_ref(model, loss_fn, x, y) -> Dict[str, torch.Tensor]:
    """Brute force: ``R Σ_n diag(J_nᵀ H_n J_n)`` with per-sample Jacobians and Hessians."""
    names, params = zip(*model.named_parameters(), strict=True)
    f = model(x)
    R = reduction(loss_fn, f)
    flat_f = f.reshape(f.shape[0], -1)
    rows = []
    for n in range(f.shape[0]):
        for j in range(flat_f.shape[1]):
            gs = torch.autograd.grad(flat_f[n, j], params, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                   for g, p in zip(gs, params, strict=True)]))
    J = torch.stack(rows).reshape(f.shape[0], flat_f.shape[1], -1)
    diag = torch.zeros(J.shape[-1], dtype=J.dtype)
    for n in range(f.shape[0]):
        H = torch.autograd.functional.hessian(
            lambda fn, n=n: _per_sample_loss(loss_fn, fn.reshape(f.shape[1:]), y[n]),
            f[n].detach().reshape(-1))
        diag += R * torch.einsum("ap,ab,bp->p", J[n], H, J[n])
    parts = diag.split([p.numel() for p in params])
    return {n: t.reshape(p.shape) for n, t, p in zip(names, parts, params, strict=True)}
