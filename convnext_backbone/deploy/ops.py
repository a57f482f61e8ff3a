"""Exportable building blocks: standard-ONNX NMS and RoIAlign, and adaptive average pooling
with dynamic input sizes.

Each op is a ``torch.autograd.Function`` whose ``forward`` computes the result in PyTorch (so the
wrappers run eagerly and the TorchScript-based exporter can trace them with real data) and whose
``symbolic`` writes the standard ONNX operator (``NonMaxSuppression``, ``RoiAlign``, opset >= 16),
so plain onnxruntime runs the graph with no custom operators.
"""
from typing import Tuple, Union

import torch
from torch import Tensor, nn

# NonMaxSuppression needs a cap on the boxes kept per class; ours keep them all.
_NMS_KEEP_ALL = 1 << 20


def _const(g, value, dtype=torch.int64):
    return g.op('Constant', value_t=torch.tensor(value, dtype=dtype))


def _reference_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS in PyTorch (mmcv's CPU semantics: suppress IoU > threshold, areas without +1)."""
    try:
        from mmcv.ops import nms
        return nms(boxes, scores, iou_threshold)[1]
    except ImportError:  # pragma: no cover - mmcv comes with mmdet, the only user of NMS here
        pass
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    iou = inter / (area[:, None] + area[None, :] - inter)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in range(len(boxes)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


class _NMS(torch.autograd.Function):

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
        if boxes.shape[0] == 0:
            return boxes.new_zeros(0, dtype=torch.long)
        return _reference_nms(boxes, scores, iou_threshold)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold):
        boxes = g.op('Unsqueeze', boxes, _const(g, [0]))
        scores = g.op('Unsqueeze', scores, _const(g, [0, 1]))
        selected = g.op('NonMaxSuppression', boxes, scores, _const(g, [_NMS_KEEP_ALL]),
                        _const(g, [iou_threshold], torch.float32), center_point_box_i=0)
        return g.op('Gather', selected, _const(g, 2), axis_i=1)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy NMS, by descending score (ONNX NonMaxSuppression)."""
    return _NMS.apply(boxes, scores, float(iou_threshold))


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each group (class or level), as mmcv's ``batched_nms``: the boxes of each group
    are shifted by ``group * (max coordinate + 1)`` so that groups never overlap."""
    # max(0, max coordinate): defined for no boxes too (boxes are clipped to >= 0 anyway)
    top = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = groups.to(boxes.dtype) * (top + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


class _RoIAlign(torch.autograd.Function):

    @staticmethod
    def forward(ctx, feats: Tensor, rois: Tensor, output_size: Tuple[int, int],
                spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
        if rois.shape[0] == 0:
            return feats.new_zeros(0, feats.shape[1], *output_size)
        from mmcv.ops import roi_align
        return roi_align(feats, rois, output_size, spatial_scale, sampling_ratio, 'avg', aligned)

    @staticmethod
    def symbolic(g, feats, rois, output_size, spatial_scale, sampling_ratio, aligned):
        batch = g.op('Gather', rois, _const(g, 0), axis_i=1)
        batch = g.op('Cast', batch, to_i=7)  # int64
        boxes = g.op('Slice', rois, _const(g, [1]), _const(g, [5]), _const(g, [1]))
        return g.op('RoiAlign', feats, boxes, batch, mode_s='avg',
                    output_height_i=output_size[0], output_width_i=output_size[1],
                    sampling_ratio_i=sampling_ratio, spatial_scale_f=spatial_scale,
                    coordinate_transformation_mode_s='half_pixel' if aligned
                    else 'output_half_pixel')


def roi_align(feats: Tensor, rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
              sampling_ratio: int, aligned: bool = True) -> Tensor:
    """mmcv's RoIAlign (average pooling) as ONNX RoiAlign; ``rois`` is (K, 5): batch, x1 y1 x2 y2.

    ``aligned=True`` (mmcv's default: pixel centres at +0.5, no minimum RoI size) is ONNX's
    ``half_pixel`` coordinate transformation (opset 16).
    """
    return _RoIAlign.apply(feats, rois, tuple(output_size), float(spatial_scale),
                           int(sampling_ratio), bool(aligned))


def _pool_matrix(length: Union[int, Tensor], size: int, dtype: torch.dtype) -> Tensor:
    """(size, length) averaging matrix of adaptive pooling: row i averages input positions
    [floor(i * length / size), ceil((i + 1) * length / size)), as PyTorch's kernel does."""
    i = torch.arange(size, dtype=torch.int64)
    start = torch.div(i * length, size, rounding_mode='floor')
    end = torch.div((i + 1) * length + size - 1, size, rounding_mode='floor')
    pos = torch.arange(length, dtype=torch.int64)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return inside.to(dtype) / (end - start)[:, None].to(dtype)


class AdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as two matrix products whose averaging matrices are built from the
    input's size inside the graph, so one exported graph serves every input size (the exporters
    otherwise fix the pooling windows to the export size, or refuse windows of uneven size)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        if any(s is None for s in size):
            raise ValueError('AdaptiveAvgPool2d: output sizes of None are not supported.')
        self.output_size = tuple(int(s) for s in size)

    def forward(self, x: Tensor) -> Tensor:
        rows = _pool_matrix(x.shape[-2], self.output_size[0], x.dtype)
        cols = _pool_matrix(x.shape[-1], self.output_size[1], x.dtype)
        return torch.matmul(torch.matmul(rows, x), cols.t())


def replace_adaptive_pooling(module: nn.Module) -> int:
    """Swap every ``nn.AdaptiveAvgPool2d`` inside ``module`` (in place) for the exportable one;
    returns how many were swapped. Call it on a copy that belongs to the export wrapper."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d):
            setattr(module, name, AdaptiveAvgPool2d(child.output_size))
            count += 1
        else:
            count += replace_adaptive_pooling(child)
    return count


def clamp_count(k: int, n: Union[int, Tensor]) -> Union[int, Tensor]:
    """min(k, n) where n may be a traced size (a tensor while exporting)."""
    if isinstance(n, Tensor):
        return torch.clamp(n, max=k)
    return min(k, n)
