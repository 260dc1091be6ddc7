"""``conv_weight_vjp(..., keep=, sample=, generator=)``: unbiased, really sub-sampled, exact at
keep = 1, and clear errors.

Unbiasedness bound: the mean of R = 2,000 independent draws of entry e has standard error
``se_e = std_e / √R``; by the central limit theorem ``z_e = (mean_e − exact_e) / se_e`` is
close to N(0, 1). A normal variable exceeds 6 in absolute value with probability 2·10⁻⁹, so
over the few hundred entries of these tiny weights ``max_e |z_e| ≤ 6`` fails by chance with
probability below 10⁻⁶, while a bias of a few standard errors fails it at once (the control
test below drops the 1/keep rescaling and is caught). Entries that never vary (se = 0) must
equal the exact value.
"""

import math

import pytest
import torch
from diagram_checks import conv_cases, pad_pairs
from hypothesis import given, settings
from hypothesis import strategies as st

from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.functional import conv_weight_vjp
from tndiag.functional.dropout import SAMPLERS, approximate_program

DRAWS = 2000


def assert_unbiased(draws: torch.Tensor, exact: torch.Tensor, bound: float = 6.0) -> None:
    """Max |z|-score of the mean of ``draws`` against ``exact`` (see the module docstring)."""
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    fixed = se <= 1e-12 * exact.abs().max().clamp_min(1)
    torch.testing.assert_close(mean[fixed], exact[fixed], rtol=1e-10, atol=1e-10)
    z = ((mean - exact)[~fixed] / se[~fixed]).abs()
    assert z.numel() and z.max() <= bound, f"max |z| = {z.max():.2f}"


def _case(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=gen)
    nd = len(w_shape) - 2
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[nd]
    pairs = pad_pairs(padding, nd, w_shape[2:], dilation)
    flat = [v for pair in reversed(pairs) for v in pair]
    w = torch.randn(w_shape, generator=gen, requires_grad=True)
    y = fn(torch.nn.functional.pad(x, flat), w, None, stride, 0, dilation, groups)
    v = torch.randn(y.shape, generator=gen)
    (exact,) = torch.autograd.grad(y, w, v)  # the oracle: autograd through torch's conv
    return x, v, exact, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _draws(x, w_shape, v, hyper, sample, keep=0.5, seed=1, dim=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([conv_weight_vjp(x, w_shape, v, **hyper, keep=keep, sample=sample,
                                        generator=gen, dim=dim) for _ in range(DRAWS)])


CASES = [
    ((3, 2, 9), (3, 2, 3), dict(stride=2, padding=1)),
    ((2, 4, 6, 5), (6, 2, 2, 3), dict(padding=((1, 0), (2, 1)), dilation=(2, 1), groups=2)),
    ((2, 2, 5, 4), (2, 2, 3, 3), dict(padding="same")),
    ((2, 2, 4, 3, 3), (2, 1, 2, 2, 1), dict(stride=(1, 2, 1), groups=2, padding=1)),
]


@pytest.mark.parametrize("sample", ["spatial", "channel"])
@pytest.mark.parametrize("x_shape,w_shape,kw", CASES)
def test_mean_of_draws_is_the_exact_gradient(x_shape, w_shape, kw, sample):
    x, v, exact, hyper = _case(x_shape, w_shape, **kw)
    draws = _draws(x, w_shape, v, hyper, sample)
    assert_unbiased(draws, exact)
    assert (draws[0] - exact).abs().max() > 1e-3  # a single draw is an estimate


@pytest.mark.parametrize("dim", [1, 2])
def test_spatial_sampling_along_another_dimension(dim):
    x, v, exact, hyper = _case((2, 2, 3, 5, 4), (2, 2, 2, 3, 2), padding=1)
    assert_unbiased(_draws(x, (2, 2, 2, 3, 2), v, hyper, "spatial", 0.3, dim=dim), exact)


@settings(max_examples=6, deadline=None)
@given(conv_cases(max_ndim=3), st.sampled_from(["spatial", "channel"]),
       st.sampled_from([0.3, 0.7]))
def test_drawn_configurations_are_unbiased(case, sample, keep):
    sizes = case["x_shape"][2:]
    dim = max(range(len(sizes)), key=lambda d: sizes[d])
    if sample == "spatial" and sizes[dim] == 1:
        sample = "channel"
    x, v, exact, hyper = _case(case["x_shape"], case["w_shape"], case["stride"],
                               case["padding"], case["dilation"], case["groups"])
    draws = _draws(x, case["w_shape"], v, hyper, sample, keep, dim=dim)
    if draws.std(0).max() == 0:  # every slice meets no weight entry (all-zero gradient)
        assert exact.abs().max() == 0
        return
    assert_unbiased(draws, exact)


def test_the_bound_catches_a_biased_estimate():
    """Control: without the 1/keep rescaling the mean is half the gradient."""
    x, v, exact, hyper = _case((3, 2, 9), (3, 2, 3))
    with pytest.raises(AssertionError, match=r"max \|z\|"):
        assert_unbiased(_draws(x, (3, 2, 3), v, hyper, "spatial") * 0.5, exact)


@pytest.mark.parametrize("sample", ["spatial", "channel"])
def test_keep_one_is_exactly_the_exact_function(sample):
    x, v, exact, hyper = _case((2, 4, 7, 6), (6, 2, 3, 2), stride=2, padding=1, groups=2)
    got = conv_weight_vjp(x, (6, 2, 3, 2), v, **hyper, keep=1.0, sample=sample)
    assert torch.equal(got, conv_weight_vjp(x, (6, 2, 3, 2), v, **hyper))
    torch.testing.assert_close(got, exact, rtol=1e-10, atol=1e-10)


def test_the_generator_makes_draws_reproducible():
    x, v, _, hyper = _case((2, 3, 8), (2, 3, 3))
    a = conv_weight_vjp(x, (2, 3, 3), v, keep=0.5, generator=torch.Generator().manual_seed(4))
    b = conv_weight_vjp(x, (2, 3, 3), v, keep=0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_channel_sampling_keeps_the_same_channels_in_every_group():
    x, v, _, hyper = _case((2, 6, 7), (4, 3, 3), groups=2)
    g = conv_weight_vjp(x, (4, 3, 3), v, **hyper, keep=0.5, sample="channel",
                        generator=torch.Generator().manual_seed(2))
    dropped = g.abs().sum((0, 2)) == 0  # per within-group input channel, over both groups
    assert dropped.any() and not dropped.all()
    assert torch.equal(g[:2].abs().sum((0, 2)) == 0, g[2:].abs().sum((0, 2)) == 0)


@pytest.mark.parametrize("leg,x_kept", [("i1", (2, 6, 2, 8)), ("ci", (2, 4, 8, 8))])
def test_the_program_runs_on_the_kept_slices_only(leg, x_kept):
    """Two kept slices of X (2, 6, 8, 8) with groups=2: rows, or 2 channels per group."""
    program = approximate_program(leg, 2, 0.5, (2, 6, 8, 8), (4, 3, 3, 3), 1, 1, 1, 2)
    shapes = dict(zip(program.inputs, program.input_shapes))
    assert shapes["X"] == x_kept and shapes["V"] == (2, 4, 8, 8)
    if leg == "i1":
        assert shapes["keep_i1"] == (2,)
        assert "gather" in [step.label for step in program.steps]
        assert all(op.lowering != "sliced-pattern" for op in program.operands)


def test_empty_batch_and_unbatched_input():
    x, v = torch.randn(0, 2, 5), torch.randn(0, 3, 3)
    assert torch.equal(conv_weight_vjp(x, (3, 2, 3), v, keep=0.5), torch.zeros(3, 2, 3))
    with pytest.raises(ShapeError, match="batched input"):
        conv_weight_vjp(torch.randn(2, 5), (3, 2, 3), torch.randn(3, 3), keep=0.5)


@pytest.mark.parametrize("kwargs,error,fragment", [
    (dict(keep=0.0), InvalidArgumentError, "(0, 1]"),
    (dict(keep=1.01), InvalidArgumentError, "(0, 1]"),
    (dict(keep=-0.5), InvalidArgumentError, "(0, 1]"),
    (dict(keep="0.5"), InvalidArgumentError, "(0, 1]"),
    (dict(keep=0.5, sample="rows"), InvalidArgumentError, "sample must be one of"),
    (dict(keep=0.5, sample=None), InvalidArgumentError, "sample must be one of"),
    (dict(keep=1.0, sample="rows"), InvalidArgumentError, "sample must be one of"),
    (dict(keep=0.5, dim=2), InvalidArgumentError, "dim must be a spatial dimension"),
    (dict(keep=0.5, generator=0), TypeError, "torch.Generator"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, fragment):
    x, v = torch.randn(2, 3, 6, 5), torch.randn(2, 4, 4, 3)
    with pytest.raises(error) as info:
        conv_weight_vjp(x, (4, 3, 3, 3), v, **kwargs)
    assert fragment in str(info.value)


def test_spatial_sampling_of_a_size_one_dimension_is_refused():
    x, v = torch.randn(2, 3, 1, 5), torch.randn(2, 4, 1, 3)
    with pytest.raises(InvalidArgumentError, match="spatial size > 1 along dim=0"):
        conv_weight_vjp(x, (4, 3, 1, 3), v, keep=0.5)
    assert conv_weight_vjp(x, (4, 3, 1, 3), v, keep=0.5, dim=1).shape == (4, 3, 1, 3)


def test_integer_inputs_and_wrong_grad_output_are_refused():
    x = torch.ones(2, 3, 6, dtype=torch.int64)
    with pytest.raises(InvalidArgumentError, match="floating-point"):
        conv_weight_vjp(x, (4, 3, 3), torch.ones(2, 4, 4, dtype=torch.int64), keep=0.5)
    with pytest.raises(ShapeError, match="grad_output"):
        conv_weight_vjp(torch.randn(2, 3, 6), (4, 3, 3), torch.randn(2, 4, 5), keep=0.5)
    with pytest.raises(TypeError):
        conv_weight_vjp([1.0], (4, 3, 3), torch.randn(2, 4, 4), keep=0.5)


def test_every_sampler_has_the_table_signature():
    x, v, _, hyper = _case((2, 2, 6), (2, 2, 3))
    for name, estimate in SAMPLERS.items():
        g = estimate(x, (2, 2, 3), v, tuple(hyper.values()), 0.5,
                     torch.Generator().manual_seed(0), 0, None)
        assert g.shape == (2, 2, 3), name
