"""Box arithmetic of mmdet's test path, written with exportable ops: delta decoding (mmdet's
``DeltaXYWHBBoxCoder``), clipping to a dynamic image size, and RPN anchors on a dynamic grid."""
import math
from typing import Sequence

import torch
from torch import Tensor


def image_size(images: Tensor) -> Tensor:
    """(width, height, width, height) of the batch as a float tensor (traced, not constant)."""
    height = torch.ones_like(images[0, 0, :, 0]).sum()
    width = torch.ones_like(images[0, 0, 0, :]).sum()
    return torch.stack([width, height, width, height])


def clip_boxes(boxes: Tensor, size: Tensor) -> Tensor:
    """Clamp (..., 4) xyxy boxes into [0, W] x [0, H] (``size`` from :func:`image_size`)."""
    return torch.minimum(boxes.clamp(min=0), size)


class DeltaDecoder:
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` (``delta2bbox``) for (K, 4) priors and deltas."""

    def __init__(self, coder) -> None:
        if type(coder).__name__ != 'DeltaXYWHBBoxCoder' or getattr(coder, 'add_ctr_clamp', False):
            raise TypeError(f'box coder {type(coder).__name__} (only DeltaXYWHBBoxCoder without '
                            'add_ctr_clamp is supported)')
        self.means = torch.tensor(coder.means, dtype=torch.float32)
        self.stds = torch.tensor(coder.stds, dtype=torch.float32)
        self.max_ratio = abs(math.log(16 / 1000))  # decode()'s default wh_ratio_clip
        self.clip_border = bool(coder.clip_border)

    def __call__(self, priors: Tensor, deltas: Tensor, size: Tensor) -> Tensor:
        deltas = deltas * self.stds + self.means
        centers = (priors[:, :2] + priors[:, 2:]) * 0.5
        sizes = priors[:, 2:] - priors[:, :2]
        centers = centers + sizes * deltas[:, :2]
        sizes = sizes * deltas[:, 2:].clamp(min=-self.max_ratio, max=self.max_ratio).exp()
        boxes = torch.cat([centers - sizes * 0.5, centers + sizes * 0.5], dim=1)
        return clip_boxes(boxes, size) if self.clip_border else boxes


def grid_anchors(base_anchors: Tensor, stride: Sequence[int], feat: Tensor) -> Tensor:
    """mmdet's ``AnchorGenerator.single_level_grid_priors`` on ``feat``'s (dynamic) grid:
    anchors ordered (y, x, anchor), as the heads' outputs are flattened."""
    ys = (torch.ones_like(feat[0, 0, :, 0]).cumsum(0) - 1) * stride[1]
    xs = (torch.ones_like(feat[0, 0, 0, :]).cumsum(0) - 1) * stride[0]
    shift_y = ys[:, None].expand(ys.shape[0], xs.shape[0]).reshape(-1)
    shift_x = xs[None, :].expand(ys.shape[0], xs.shape[0]).reshape(-1)
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1)
    return (shifts[:, None, :] + base_anchors[None, :, :]).reshape(-1, 4)
