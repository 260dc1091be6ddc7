"""Sum curvature quantities over the ranks of a ``torch.distributed`` process group.

Each rank computes its quantities on its own shard with its own normalisation (``1/N_r``);
weighting them by ``N_r / N`` (``N = Σ_r N_r``) before one ``all_reduce`` of a single
flat buffer gives exactly the quantities of the concatenated batch.
"""

from __future__ import annotations

from typing import List, Optional

import torch

__all__ = ["active", "all_reduce_weighted"]


def active(process_group: Optional[object] = None) -> bool:
    """Whether a process group is initialised (then the results are all-reduced).

    >>> active()
    False
    """
    import torch.distributed as dist

    return process_group is not None or (dist.is_available() and dist.is_initialized())


def all_reduce_weighted(averaged: List[torch.Tensor], summed: List[torch.Tensor], batch: int,
                        process_group: Optional[object] = None) -> None:
    """All-reduce in place: ``averaged`` as ``Σ_r (N_r/N)·t_r``, ``summed`` as ``Σ_r t_r``."""
    import torch.distributed as dist

    tensors = averaged + summed
    if not tensors:
        return
    ref = tensors[0]
    total = torch.tensor([float(batch)], dtype=torch.float64, device=ref.device)
    dist.all_reduce(total, group=process_group)
    weight = batch / float(total.item())
    flat = torch.cat([t.reshape(-1) * weight for t in averaged] +
                     [t.reshape(-1) for t in summed])
    dist.all_reduce(flat, group=process_group)
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors]), strict=True):
        t.copy_(part.reshape(t.shape))
