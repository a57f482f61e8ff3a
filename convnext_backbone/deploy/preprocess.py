"""The data preprocessor's per-image work inside the graph: channel swap and normalisation.

The exported graphs take the image batch as mmdet's/mmseg's ``data_preprocessor`` receives it:
(N, 3, H, W) float32, channels in the order the images were loaded (BGR for OpenCV), values
0-255. Padding is not done in the graph: H and W must be multiples of ``size_divisor`` (the
preprocessor's ``pad_size_divisor`` and the backbone's largest stride), so the eager model pads
nothing either.
"""
import math

import torch
from torch import Tensor, nn

from .errors import ExportError


class Preprocess(nn.Module):
    """Swap BGR/RGB if the preprocessor does, then ``(x - mean) / std``."""

    def __init__(self, data_preprocessor: nn.Module) -> None:
        super().__init__()
        dp = data_preprocessor
        self.swap = bool(getattr(dp, '_channel_conversion', getattr(dp, 'channel_conversion',
                                                                    False)))
        normalize = bool(getattr(dp, '_enable_normalize', False))
        mean = dp.mean.detach().reshape(1, -1, 1, 1).float() if normalize else torch.zeros(
            1, 3, 1, 1)
        std = dp.std.detach().reshape(1, -1, 1, 1).float() if normalize else torch.ones(1, 3, 1, 1)
        self.register_buffer('mean', mean.clone())
        self.register_buffer('std', std.clone())

    def forward(self, images: Tensor) -> Tensor:
        if self.swap:
            images = images[:, [2, 1, 0]]
        return (images - self.mean) / self.std


def size_divisor(model: nn.Module) -> int:
    """H and W of the graph's input must be multiples of this: the backbone's largest output
    stride and the data preprocessor's padding divisor (mmdet pads to 32)."""
    divisor = 1
    backbone = getattr(model, 'backbone', model)
    for stride in getattr(backbone, 'out_strides', (32,)):
        divisor = math.lcm(divisor, int(stride))
    dp = getattr(model, 'data_preprocessor', None)
    pad = getattr(dp, 'pad_size_divisor', None) or getattr(dp, 'size_divisor', None)
    if pad:
        divisor = math.lcm(divisor, int(pad))
    return divisor


def check_shape(shape, divisor: int, what: str = '--shape') -> None:
    """A clear error for an input size the graph does not accept."""
    height, width = (int(s) for s in shape)
    if height <= 0 or width <= 0 or height % divisor or width % divisor:
        up = [math.ceil(max(s, 1) / divisor) * divisor for s in (height, width)]
        raise ExportError(
            f'{what} {height} {width}: height and width must be positive multiples of {divisor} '
            f'(the model pads its images to multiples of {divisor} and its backbone downsamples '
            f'by it); pad or resize the images, e.g. to {up[0]} {up[1]}.')
