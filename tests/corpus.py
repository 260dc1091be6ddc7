"""The shared corpus of diagrams: every builder over representative hyper-parameters.

Tests of every layer (verify, passes, text round trip, rendering, codegen, export) iterate
over ``CORPUS`` so that a new builder or hyper-parameter case is covered everywhere at once.
Each entry is ``(id, thunk)``; the thunk builds the diagram (concrete or symbolic).
"""

from tndiag import ops

CORPUS = [
    ("conv2d-symbolic", lambda: ops.conv(ndim=2)),
    ("conv2d-symbolic-bias", lambda: ops.conv(ndim=2, bias=True)),
    ("conv1d", lambda: ops.conv((2, 3, 11), (4, 3, 3))),
    ("conv2d-strided-grouped", lambda: ops.conv((2, 4, 9, 8), (6, 2, 3, 3), stride=2, padding=1,
                                                groups=2)),
    ("conv2d-same-even", lambda: ops.conv((2, 2, 7, 6), (3, 2, 4, 2), padding="same",
                                          dilation=(1, 2))),
    ("conv2d-asymmetric", lambda: ops.conv((1, 2, 7, 6), (3, 2, 3, 3),
                                           padding=((1, 2), (0, 1)))),
    ("conv2d-depthwise-bias", lambda: ops.conv((2, 3, 6, 6), (3, 1, 3, 3), groups=3,
                                               bias=True)),
    ("conv3d", lambda: ops.conv((1, 2, 5, 4, 6), (2, 2, 2, 3, 2), stride=(1, 2, 1),
                                dilation=(2, 1, 1))),
    ("conv2d-dense-1x1", lambda: ops.conv((2, 8, 8, 8), (4, 8, 1, 1))),
    ("conv2d-convnext-stem", lambda: ops.conv((2, 3, 16, 16), (8, 3, 4, 4), stride=4)),
    ("conv2d-downsample-1x1s2", lambda: ops.conv((2, 4, 8, 8), (8, 4, 1, 1), stride=2)),
    ("conv2d-inception-1x7", lambda: ops.conv((2, 4, 9, 9), (4, 4, 1, 7), padding=(0, 3))),
    ("conv-transpose1d-op", lambda: ops.conv_transpose((2, 4, 5), (4, 3, 3), stride=2,
                                                       output_padding=1)),
    ("conv-transpose2d-grouped-bias", lambda: ops.conv_transpose(
        (2, 4, 5, 4), (4, 1, 3, 2), stride=(2, 1), padding=1, groups=2, bias=True)),
    ("conv-transpose2d-symbolic", lambda: ops.conv_transpose(ndim=2, stride=2)),
    ("unfold2d", lambda: ops.unfold((2, 3, 8, 9), (3, 2), padding=1, stride=(2, 1))),
    ("unfold1d-symbolic", lambda: ops.unfold(kernel_size=(3,), stride=2)),
    ("unfold3d", lambda: ops.unfold((1, 2, 4, 5, 6), 2, dilation=(1, 2, 1))),
    ("fold2d", lambda: ops.fold((2, 18, 40), (8, 9), (3, 2), padding=1, stride=(2, 1))),
    ("unfold-kernel-grouped", lambda: ops.unfold_kernel((4, 1, 3, 3), (6, 5), groups=2,
                                                        padding=1)),
    ("unfold-kernel1d", lambda: ops.unfold_kernel((3, 2, 3), (7,), stride=2)),
]

IDS = [name for name, _ in CORPUS]


def build(name: str):
    """The corpus diagram called ``name``."""
    return dict(CORPUS)[name]()
