"""The data preprocessor's work inside the graph: channel swap, normalisation and padding.

The exported graphs take the image as the config's test pipeline resized it, unpadded: (N, 3, H,
W) float32, channels in the order the image was loaded (BGR for OpenCV), values 0-255, any H and
W. Inside, they do what mmdet's ``DetDataPreProcessor`` / mmseg's ``SegDataPreProcessor`` do at
test time, in their order: swap the channels, normalise, then pad bottom/right with the
preprocessor's ``pad_value`` (a value in normalised space, 0 by default: after normalisation,
so the padded area is the mean colour in raw pixels) up to a multiple of the size divisor.
mmdet pads to ``pad_size_divisor``; mmseg pads at test time only when its preprocessor has a
``test_cfg`` (``size_divisor`` and/or ``size``), otherwise the network sees the image as it is.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ExportError


def padding_rule(data_preprocessor: Optional[nn.Module]) -> Tuple[int, Tuple[int, int], float]:
    """(divisor, minimum size (H, W), pad value) of the preprocessor's test-time padding; a
    divisor of 1 and minimum (0, 0) when it pads nothing."""
    dp = data_preprocessor
    if dp is None:
        return 1, (0, 0), 0.0
    if type(dp).__name__ == 'SegDataPreProcessor':
        test_cfg = getattr(dp, 'test_cfg', None) or {}
        size = test_cfg.get('size') or (0, 0)
        divisor = test_cfg.get('size_divisor') or 1
        return int(divisor), (int(size[0]), int(size[1])), float(getattr(dp, 'pad_val', 0))
    divisor = getattr(dp, 'pad_size_divisor', None) or 1
    return int(divisor), (0, 0), float(getattr(dp, 'pad_value', 0))


def padded_length(length, divisor: int, minimum: int = 0):
    """max(length, minimum) rounded up to a multiple of ``divisor`` (works on traced sizes)."""
    if minimum:
        length = torch.clamp(torch.as_tensor(length), min=minimum) if isinstance(
            length, Tensor) else max(length, minimum)
    return (length + divisor - 1) // divisor * divisor


class Preprocess(nn.Module):
    """Swap BGR/RGB if the preprocessor does, ``(x - mean) / std``, then pad bottom/right as the
    preprocessor pads at test time (see the module docstring)."""

    def __init__(self, data_preprocessor: nn.Module, pad: bool = True) -> None:
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
        divisor, minimum, value = padding_rule(dp) if pad else (1, (0, 0), 0.0)
        self.divisor, self.minimum, self.pad_value = divisor, minimum, value

    @property
    def pads(self) -> bool:
        return self.divisor > 1 or any(self.minimum)

    def forward(self, images: Tensor) -> Tensor:
        if self.swap:
            images = images[:, [2, 1, 0]]
        images = (images - self.mean) / self.std
        if not self.pads:
            return images
        # Pad by the most any size can need (a constant, so the graph has a plain Pad), then
        # cut to the padded size computed from the input's (dynamic) size.
        extra_h = max(self.minimum[0], 0) + self.divisor - 1
        extra_w = max(self.minimum[1], 0) + self.divisor - 1
        height, width = images.shape[2], images.shape[3]
        padded = F.pad(images, (0, extra_w, 0, extra_h), value=self.pad_value)
        return padded[:, :, :padded_length(height, self.divisor, self.minimum[0]),
                      :padded_length(width, self.divisor, self.minimum[1])]


def size_divisor(model: nn.Module) -> int:
    """The multiple of which the network's input is made (by padding inside the graph); 1 when
    the preprocessor does not pad. Informational: the graph's own input may have any size."""
    return padding_rule(getattr(model, 'data_preprocessor', None))[0]


def coarsest_stride(model: nn.Module) -> int:
    """The backbone's largest output stride (32 for ConvNeXt's four stages)."""
    backbone = getattr(model, 'backbone', model)
    stride = 1
    for s in getattr(backbone, 'out_strides', (32,)):
        stride = math.lcm(stride, int(s))
    return stride


def min_input_size(model: nn.Module, cells: int = 1) -> int:
    """The smallest H and W the graph accepts: the backbone needs ``cells`` pixels at its
    coarsest stride, which the padding may provide."""
    stride = coarsest_stride(model)
    divisor, minimum, _ = padding_rule(getattr(model, 'data_preprocessor', None))
    for size in range(1, (cells + 1) * max(stride, divisor) + 1):
        if min(padded_length(size, divisor, m) for m in minimum) // stride >= cells:
            return size
    return cells * stride


def check_shape(shape, minimum: int = 1, what: str = '--shape') -> None:
    """A clear error for an input size the graph does not accept (not positive, or smaller than
    the backbone's coarsest stride where nothing pads it)."""
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ExportError(f'{what} {shape}: give two integers, height and width.') from None
    if height < minimum or width < minimum:
        floor = max(minimum, 1)
        raise ExportError(
            f'{what} {height} {width}: height and width must be at least {floor}'
            + (f' (the backbone downsamples by {floor} and this model pads nothing)'
               if floor > 1 else '') + f'; give a larger size, e.g. {max(height, floor)} '
            f'{max(width, floor)}.')
