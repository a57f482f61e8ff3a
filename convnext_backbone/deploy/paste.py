"""Paste the detector graph's RoI masks into an image, as mmdet does, in numpy alone.

The graph's ``masks`` output is (K, 28, 28) float32: 28 x 28 x 4 bytes = 3 KB a detection (313 KB
for 100), whatever the image size. mmdet's ``FCNMaskHead`` pastes each into its box on the
image (``_do_paste_mask``: ``grid_sample``, bilinear, ``align_corners=False``, zeros outside the
mask) within the box's pixel range widened by one pixel (clamped to the image), and thresholds
at ``mask_thr_binary`` (metadata ``mask_thr_binary``). Bilinear sampling is separable, so each
paste is two small matrix products. Binary masks at the original size of a 640x480 image cost
K x 307 KB (bool); paste one at a time where memory matters.

For mmdet's own result (``inference_detector``), paste with the boxes in the original image's
pixels (the graph's boxes divided by the resize's scale factor) at the original size.
"""
import math

import numpy as np


def _weights(start: float, end: float, first: int, count: int, cells: int) -> np.ndarray:
    """(count, cells) bilinear weights of pixels first..first+count-1 along one axis for a mask
    of ``cells`` stretched over [start, end], as grid_sample samples it (float32 like mmdet)."""
    centres = np.arange(first, first + count, dtype=np.float32) + np.float32(0.5)
    with np.errstate(divide='ignore', invalid='ignore'):
        grid = (centres - np.float32(start)) / np.float32(end - start) * 2 - 1
    grid = np.where(np.isinf(grid), np.float32(0), grid).astype(np.float32)
    position = ((grid + 1) * cells - 1) / 2
    return np.clip(1 - np.abs(position[:, None] - np.arange(cells, dtype=np.float32)), 0, None)


def paste_window(mask: np.ndarray, box, height: int, width: int):
    """One (h, w) probability mask pasted into ``box`` (x1, y1, x2, y2) on an (height, width)
    image, only where it can be non-zero: ``(top, left, values)``, the float32 probabilities of
    the box's pixel range widened by one (clamped to the image; empty for a box off the image).
    Zero everywhere else; cheap on large images."""
    x0, y0, x1, y1 = (float(v) for v in box)
    left, top = max(math.floor(x0) - 1, 0), max(math.floor(y0) - 1, 0)
    right, bottom = min(math.ceil(x1) + 1, width), min(math.ceil(y1) + 1, height)
    if right <= left or bottom <= top:
        return top, left, np.zeros((0, 0), np.float32)
    wy = _weights(y0, y1, top, bottom - top, mask.shape[0])
    wx = _weights(x0, x1, left, right - left, mask.shape[1])
    return top, left, wy @ mask.astype(np.float32) @ wx.T


def paste_mask(mask: np.ndarray, box, height: int, width: int) -> np.ndarray:
    """One (h, w) probability mask pasted into ``box`` (x1, y1, x2, y2) on an (height, width)
    image: float32 probabilities, zero outside the box's pixel range."""
    out = np.zeros((height, width), np.float32)
    top, left, values = paste_window(mask, box, height, width)
    out[top:top + values.shape[0], left:left + values.shape[1]] = values
    return out


def paste_masks(masks: np.ndarray, boxes: np.ndarray, height: int, width: int,
                threshold: float = 0.5) -> np.ndarray:
    """(K, h, w) probabilities + (K, 4) boxes -> (K, height, width) binary masks (bool), as
    mmdet's ``mask_thr_binary`` thresholding (``>=``); a negative threshold keeps the float
    probabilities."""
    dtype = np.float32 if threshold < 0 else bool
    out = np.zeros((len(masks), height, width), dtype)
    for i, (mask, box) in enumerate(zip(masks, boxes)):
        pasted = paste_mask(mask, box, height, width)
        out[i] = pasted if threshold < 0 else pasted >= threshold
    return out
