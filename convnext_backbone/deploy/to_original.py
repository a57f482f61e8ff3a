"""A graph's outputs brought to the original image as mmdet's and mmseg's postprocessing brings
the model's: boxes divided by the test resize's scale factor, seg logits resized bilinearly to
the original size (the RoI masks: :mod:`.paste`). One place for ``--verify`` (against the
hosts' inference APIs) and for ``tools/test_onnx.py`` (the hosts' metrics)."""
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def boxes_to_original(boxes: np.ndarray, scale_factor: Sequence[float]) -> np.ndarray:
    """(K, 4) xyxy in the resized input's pixels -> the original image's; ``scale_factor`` is
    the resize's (w, h) as mmcv's ``Resize`` records it."""
    return boxes.astype(np.float32) / np.asarray(tuple(scale_factor) * 2, np.float32)


def logits_to_original(logits: np.ndarray, ori_shape: Sequence[int],
                       align_corners: bool) -> torch.Tensor:
    """(1, C, H, W) logits at the input size -> (C, H0, W0) at the original size."""
    return F.interpolate(torch.from_numpy(logits), size=tuple(ori_shape[:2]), mode='bilinear',
                         align_corners=align_corners)[0]
