"""Model-level curvature: KFAC (expand / reduce) and GGN diagonals for every ``Linear``,
``Conv{1,2,3}d`` and ``ConvTranspose{1,2,3}d``, from the compiled per-layer diagrams.

Hooks capture each layer's input in the forward pass and its output gradients in one
backward pass of the loss-Hessian square-root columns; the per-layer quantities are the
compiled KFC, KFAC-reduce, grad-output and GGN-diagonal diagrams. Under
``torch.distributed`` the results are all-reduced across ranks. See docs/curvature.md.

>>> import torch
>>> import tndiag.curvature as tc
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, groups=1), torch.nn.Flatten(),
...                           torch.nn.Linear(16, 3))
>>> K = tc.kfac(net, torch.nn.CrossEntropyLoss(), torch.randn(8, 1, 4, 4),
...             torch.randint(0, 3, (8,)), kfac_approx="reduce")
>>> (K.inverse(damping=1e-2) @ torch.ones(K.dim)).shape
torch.Size([91])
"""

from tndiag.curvature.api import ggn_diag, kfac
from tndiag.curvature.checks import NotATensorError
from tndiag.curvature.operator import KFAC, LayerFactors

__all__ = ["kfac", "ggn_diag", "KFAC", "LayerFactors", "NotATensorError"]
