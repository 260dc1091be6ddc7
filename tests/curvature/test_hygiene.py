"""Hooks, gradients and errors of tndiag.curvature."""

import gc
import weakref

import pytest
import torch
from torch import nn

import tndiag.curvature as tc
from tests.curvature.models import GRID, grid_model, inputs_for, targets_for
from tndiag.errors import InvalidArgumentError, ShapeError, TndiagError

CE = nn.CrossEntropyLoss()


def _setup(name="conv2d-g2-dil2"):
    model, (_, shape) = grid_model(name), GRID[name]
    return model, inputs_for(shape), targets_for(CE)


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


@pytest.mark.parametrize("fn", [tc.kfac, tc.ggn_diag])
def test_grads_hooks_and_graph_are_left_as_they_were(fn):
    model, x, y = _setup()
    model(x).sum().backward()
    before = [p.grad.clone() for p in model.parameters()]
    result = fn(model, CE, x, y, fisher_type="type-2")
    assert _hooks(model) == 0
    for p, g in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)
    tensors = (result.to_dense(),) if isinstance(result, tc.KFAC) else tuple(result.values())
    assert all(t.grad_fn is None and not t.requires_grad for t in tensors)


def test_no_activation_outlives_the_call():
    model, x, y = _setup()
    refs = []

    def keep(module, args, out):
        refs.append(weakref.ref(out))
    handle = model[1].register_forward_hook(keep)
    K = tc.kfac(model, CE, x, y)
    handle.remove()
    gc.collect()
    assert refs and all(r() is None for r in refs)
    assert K.dim == sum(p.numel() for p in model.parameters())


def test_hooks_are_removed_when_the_model_raises():
    model, x, y = _setup()

    def boom(module, args, out):
        raise RuntimeError("boom")
    handle = model[1].register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        tc.kfac(model, CE, x, y)
    handle.remove()
    assert _hooks(model) == 0


def test_hooks_are_removed_when_the_loss_check_raises():
    model, x, _ = _setup()
    with pytest.raises(ShapeError, match="targets"):
        tc.kfac(model, nn.MSELoss(), x, torch.zeros(3, 5, dtype=torch.float64))
    assert _hooks(model) == 0


def test_in_place_activations_do_not_change_the_factors():
    torch.manual_seed(0)
    body = [nn.Conv1d(2, 3, 3), None, nn.Conv1d(3, 2, 2), nn.Flatten(), nn.Linear(6, 3)]
    plain = nn.Sequential(*[nn.ReLU() if m is None else m for m in body]).double()
    inplace = nn.Sequential(*[nn.ReLU(inplace=True) if m is None else m for m in body]).double()
    x, y = torch.randn(4, 2, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    for approx in ("expand", "reduce"):
        a, b = (tc.kfac(m, CE, x, y, kfac_approx=approx, fisher_type="type-2").to_dense()
                for m in (plain, inplace))
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ddp_wrapped_model_gives_the_unwrapped_result(tmp_path):
    import torch.distributed as dist

    from tests.curvature.test_distributed import rendezvous
    dist.init_process_group("gloo", init_method=rendezvous(tmp_path), rank=0, world_size=1)
    try:
        model, x, y = _setup()
        ddp = nn.parallel.DistributedDataParallel(model)
        a = tc.kfac(ddp, CE, x, y, fisher_type="type-2")
        b = tc.kfac(model, CE, x, y, fisher_type="type-2")
        torch.testing.assert_close(a.to_dense(), b.to_dense(), rtol=0, atol=0)
        assert a.param_names[0] == "0.weight"
        ddp(x).sum().backward()  # DDP still trains afterwards
    finally:
        # DDP's reducer holds the group: freed after destroy_process_group, the gloo
        # group's destructor joined a thread that never ended (a CI run hung here)
        ddp = None
        gc.collect()
        dist.destroy_process_group()


def test_unsupported_layer_is_named_unless_params_leave_it_out():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                          nn.Linear(8, 3)).double()
    x, y = torch.randn(4, 1, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    with pytest.raises(InvalidArgumentError, match=r"1 \(BatchNorm2d\)"):
        tc.kfac(model, CE, x, y)
    K = tc.kfac(model, CE, x, y, params=[model[0].weight, model[0].bias, model[3].weight])
    assert K.modules == ["0", "3"] and K["3"].bias_input is None
    with pytest.raises(InvalidArgumentError, match="params"):
        tc.kfac(model, CE, x, y, params=[torch.nn.Parameter(torch.zeros(2))])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(loss_fn=nn.L1Loss()), InvalidArgumentError, "loss_fn must be"),
    (dict(loss_fn=nn.CrossEntropyLoss(reduction="none")), InvalidArgumentError, "reduction"),
    (dict(loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1)), InvalidArgumentError,
     "label smoothing"),
    (dict(targets=torch.tensor([0, 1])), ShapeError, "different batch sizes: 3 vs 2"),
    (dict(inputs="x"), TypeError, "inputs must be a torch.Tensor"),
    (dict(mc_samples=0), InvalidArgumentError, "mc_samples must be an int >= 1"),
    (dict(mc_samples=1.5), InvalidArgumentError, "mc_samples"),
    (dict(fisher_type="exact"), InvalidArgumentError, "fisher_type"),
    (dict(kfac_approx="full"), InvalidArgumentError, "kfac_approx"),
    (dict(generator=3), TypeError, "generator"),
    (dict(targets=torch.tensor([0, 1, 7])), InvalidArgumentError, r"\[0, 3\)"),
])
def test_bad_input_gets_a_clear_error(kwargs, error, match):
    model, x, y = _setup()
    args = dict(model=model, loss_fn=CE, inputs=x, targets=y)
    args.update(kwargs)
    with pytest.raises(error, match=match) as info:
        tc.kfac(**args)
    assert isinstance(info.value, TndiagError)
    assert _hooks(model) == 0


def test_empty_batch_and_mismatched_dtype_or_device():
    model, x, y = _setup()
    with pytest.raises(InvalidArgumentError, match="empty batch"):
        tc.kfac(model, CE, x[:0], y[:0])
    with pytest.raises(InvalidArgumentError, match="dtype torch.float64 but inputs have dtype "
                                                   "torch.float32"):
        tc.ggn_diag(model, CE, x.float(), y)
    with pytest.raises(InvalidArgumentError, match="on cpu but inputs are on meta"):
        tc.kfac(model, CE, x.to("meta"), y)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        tc.kfac(lambda t: t, CE, x, y)


def test_vector_shapes_are_checked():
    model, x, y = _setup()
    K = tc.kfac(model, CE, x, y)
    with pytest.raises(ShapeError, match=rf"expected \[{K.dim}\]"):
        K @ torch.zeros(K.dim + 1, dtype=torch.float64)
    with pytest.raises(ShapeError, match="vector list"):
        K @ [torch.zeros(2)]
    with pytest.raises(KeyError, match="covered are"):
        K["nope"]
    with pytest.raises(InvalidArgumentError, match="damping"):
        K.inverse(-1.0)


def test_a_layer_called_twice_is_refused():
    lin = nn.Linear(3, 3).double()
    model = nn.Sequential(lin, nn.Tanh(), lin)
    with pytest.raises(InvalidArgumentError, match="called more than once"):
        tc.kfac(model, nn.MSELoss(), torch.randn(2, 3, dtype=torch.float64),
                torch.randn(2, 3, dtype=torch.float64))
    assert _hooks(model) == 0


@pytest.mark.parametrize("fn", [tc.kfac, tc.ggn_diag])
def test_chunked_columns_give_the_same_result(fn, monkeypatch):
    from tndiag.curvature import capture
    model, x, y = _setup()
    whole = fn(model, CE, x, y, fisher_type="type-2")
    monkeypatch.setattr(capture, "COLUMN_BUDGET", 1)  # one column per backward
    chunked = fn(model, CE, x, y, fisher_type="type-2")
    if isinstance(whole, tc.KFAC):
        whole, chunked = {"K": whole.to_dense()}, {"K": chunked.to_dense()}
    for k in whole:
        torch.testing.assert_close(chunked[k], whole[k], rtol=1e-12, atol=1e-14)
