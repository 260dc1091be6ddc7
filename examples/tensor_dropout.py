"""Tensor dropout on an untrained All-CNN-C: gradient error against saved bytes, with CRS.

    python examples/tensor_dropout.py --small          # seconds
    python examples/tensor_dropout.py --plot /tmp/td   # the full experiment (many minutes)

First the API on one layer: ``conv_weight_vjp(..., keep=, sample=)`` for the three samplers
and the bytes a model saves for backward after ``tensor_dropout``; then the experiment of
``tndiag paper dropout`` (:mod:`tndiag.bench.dropout`) at the chosen size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import tndiag.nn
from tndiag.bench import dropout
from tndiag.bench.dropout_models import SavedBytes, allcnnc, capture, random_labels
from tndiag.bench.dropout_models import sample_image_batch as images
from tndiag.bench.dropout_plots import plot_dropout
from tndiag.bench.dropout_report import format_results
from tndiag.functional import conv_weight_vjp


def one_layer(batch: int) -> None:
    """Relative error of one draw per sampler on All-CNN-C's fifth convolution."""
    model = allcnnc()
    case = capture(model, images(batch), random_labels(batch))[4]
    stride, padding, dilation, groups = case.hyper
    gen = torch.Generator().manual_seed(0)
    norm = case.weight_grad.norm()
    print(f"layer {case.name}: input {list(case.input.shape)}, weight {list(case.weight_shape)}")
    for sample in ("spatial", "channel", "crs"):
        for keep in (0.25, 0.5):
            g = conv_weight_vjp(case.input, case.weight_shape, case.grad_output, stride,
                                padding, dilation, groups, keep=keep, sample=sample,
                                generator=gen)
            print(f"  {sample:>7} keep={keep}: relative error of one draw "
                  f"{float((g - case.weight_grad).norm() / norm):.3f}")


def saved(batch: int) -> None:
    """Bytes the convolutions save for backward, before and after ``tensor_dropout``."""
    model, x = allcnnc(), images(batch)
    for keep in (1.0, 0.5, 0.25):
        net = tndiag.nn.tensor_dropout(model, keep=keep, sample="spatial")
        with SavedBytes(net) as s:
            net(x)
        print(f"tensor_dropout(keep={keep}): the convolutions save "
              f"{sum(s.per_layer.values()) / 2**20:.2f} MiB, the whole forward pass "
              f"{s.total / 2**20:.2f} MiB")
        tndiag.nn.restore(model)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--small", action="store_true", help="tiny sizes (seconds)")
    p.add_argument("--plot", type=Path, default=None, metavar="DIR", help="write figures here")
    args = p.parse_args()
    torch.set_num_threads(1)
    batch = 8 if args.small else 64
    one_layer(batch)
    saved(batch)
    config = dropout.Config(**dropout.SMALL) if args.small else dropout.Config()
    results = dropout.run(config)
    print(format_results(results))
    if args.plot:
        for path in plot_dropout(results, args.plot):
            print(f"plot: {path}")


if __name__ == "__main__":
    main()
