"""Two gloo processes on uneven shards reproduce the single-process result on the whole batch."""

import os
import sys

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = [("expand", "type-2", nn.CrossEntropyLoss()),
         ("reduce", "empirical", nn.CrossEntropyLoss(reduction="sum")),
         ("reduce", "type-2", nn.MSELoss())]


def rendezvous(directory) -> str:
    """A file rendezvous for ``init_process_group`` (no TCP port to pick: a port found free
    and then bound by another test process would fail the group's start)."""
    return "file://" + os.path.join(str(directory), "rendezvous")


def _data():
    from tests.curvature.models import GRID, grid_model, inputs_for, targets_for
    model, (_, shape) = grid_model("convT2d-g2-dil2"), GRID["convT2d-g2-dil2"]
    x = inputs_for(shape, N=8)
    return model, x, {type(l).__name__ + l.reduction: targets_for(l, N=8) for _, _, l in CASES}


def _results(model, x, ys, **kw):
    import tndiag.curvature as tc
    out = []
    for approx, fisher, loss_fn in CASES:
        y = ys[type(loss_fn).__name__ + loss_fn.reduction]
        K = tc.kfac(model, loss_fn, x, y, kfac_approx=approx, fisher_type=fisher, **kw)
        out.append(K.to_dense())
        out.extend(tc.ggn_diag(model, loss_fn, x, y, **kw).values())
    return out


def _worker(rank: int, init: str, path: str) -> None:
    sys.path.insert(0, ROOT)
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        torch.set_default_dtype(torch.float64)  # as the test process (tests/conftest.py)
        model, x, ys = _data()
        shard = slice(0, 3) if rank == 0 else slice(3, 8)  # uneven: 3 and 5 samples
        ddp = nn.parallel.DistributedDataParallel(model)
        out = _results(ddp, x[shard], {k: v[shard] for k, v in ys.items()})
        if rank == 0:
            torch.save(out, path)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    path = str(tmp_path / "rank0.pt")
    mp.spawn(_worker, args=(rendezvous(tmp_path), path), nprocs=2, join=True)
    model, x, ys = _data()
    expected = _results(model, x, ys)
    got = torch.load(path)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("group", [None])
def test_without_a_process_group_nothing_is_reduced(group):
    from tndiag.curvature import distributed
    assert not distributed.active(group)
