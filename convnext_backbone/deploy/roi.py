"""The detector's post-processing in exportable ops: RPN proposals, RoI features by FPN level,
box-head decoding with per-class NMS, class selection of the masks. Each piece mirrors one mmdet 3.x
test-time function (named in its docstring) and reuses the trained layers as they are."""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .boxes import DeltaDecoder, grid_anchors
from .ops import batched_nms, clamp_count, roi_align


def nms_iou(cfg, where: str) -> float:
    """The IoU threshold of an mmdet ``nms`` config (plain NMS only)."""
    if cfg is None or cfg.get('type', 'nms') != 'nms':
        raise TypeError(f'{where}: NMS of type {cfg and cfg.get("type")!r} (only type=\'nms\' '
                        'is exported)')
    return float(cfg['iou_threshold'])


def _arange_like(x: Tensor) -> Tensor:
    """0..len(x)-1 as int64, with a length that stays dynamic in the graph."""
    return torch.ones_like(x, dtype=torch.int64).cumsum(0) - 1


class Proposals(nn.Module):
    """mmdet's ``RPNHead.predict_by_feat`` for one image: per level the ``nms_pre`` best anchors,
    decoded and clipped, boxes of no size dropped, NMS within each level, ``max_per_img`` best."""

    def __init__(self, rpn_head: nn.Module, test_cfg) -> None:
        super().__init__()
        self.head = rpn_head
        self.use_sigmoid = bool(rpn_head.use_sigmoid_cls)
        self.strides = [tuple(s) for s in rpn_head.prior_generator.strides]
        for i, anchors in enumerate(rpn_head.prior_generator.base_anchors):
            self.register_buffer(f'base_anchors{i}', anchors.clone().float(), persistent=False)
        self.decoder = DeltaDecoder(rpn_head.bbox_coder)
        self.nms_pre = int(test_cfg.get('nms_pre', -1))
        self.max_per_img = int(test_cfg['max_per_img'])
        self.min_bbox_size = float(test_cfg.get('min_bbox_size', -1))
        self.iou = nms_iou(test_cfg.get('nms'), 'rpn test_cfg')

    def forward(self, feats: Sequence[Tensor], size: Tensor) -> Tensor:
        cls_scores, bbox_preds = self.head(feats)
        all_scores, all_deltas, all_anchors, all_levels = [], [], [], []
        for level, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            if self.use_sigmoid:
                scores = cls[0].permute(1, 2, 0).reshape(-1).sigmoid()
            else:
                scores = cls[0].permute(1, 2, 0).reshape(-1, 2).softmax(-1)[:, 0]
            deltas = reg[0].permute(1, 2, 0).reshape(-1, 4)
            anchors = grid_anchors(getattr(self, f'base_anchors{level}'), self.strides[level],
                                   cls)
            if self.nms_pre > 0:
                scores, keep = scores.topk(clamp_count(self.nms_pre, scores.shape[0]))
                deltas, anchors = deltas[keep], anchors[keep]
            all_scores.append(scores)
            all_deltas.append(deltas)
            all_anchors.append(anchors)
            all_levels.append(torch.full_like(scores, level, dtype=torch.int64))
        scores = torch.cat(all_scores)
        boxes = self.decoder(torch.cat(all_anchors), torch.cat(all_deltas), size)
        levels = torch.cat(all_levels)
        if self.min_bbox_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            valid = ((wh[:, 0] > self.min_bbox_size) & (wh[:, 1] > self.min_bbox_size))
            valid = valid.nonzero()[:, 0]
            boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
        keep = batched_nms(boxes, scores, levels, self.iou)[:self.max_per_img]
        return boxes[keep]


def rois_of(boxes: Tensor) -> Tensor:
    """(K, 4) boxes of image 0 -> (K, 5) RoIs (batch index, x1, y1, x2, y2)."""
    return torch.cat([torch.zeros_like(boxes[:, :1]), boxes], dim=1)


class MultiLevelRoIAlign(nn.Module):
    """mmdet's ``SingleRoIExtractor``: each RoI is pooled from the FPN level of its scale
    (floor(log2(sqrt(area) / finest_scale)), clamped), with mmcv's RoIAlign as ONNX RoiAlign."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        layers = extractor.roi_layers
        kind = type(layers[0]).__name__
        if kind != 'RoIAlign' or getattr(layers[0], 'pool_mode', 'avg') != 'avg':
            raise TypeError(f'RoI layer {kind} (only RoIAlign with average pooling is exported)')
        self.num_inputs = len(layers)
        self.output_size = tuple(layers[0].output_size)
        self.scales = [float(layer.spatial_scale) for layer in layers]
        self.sampling_ratio = int(layers[0].sampling_ratio)
        self.aligned = bool(layers[0].aligned)
        self.finest_scale = float(extractor.finest_scale)

    def _align(self, feat: Tensor, rois: Tensor, level: int) -> Tensor:
        return roi_align(feat, rois, self.output_size, self.scales[level], self.sampling_ratio,
                         self.aligned)

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        if self.num_inputs == 1:
            return self._align(feats[0], rois, 0)
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        levels = levels.clamp(min=0, max=self.num_inputs - 1).long()
        pooled, order = [], []
        for level in range(self.num_inputs):
            inds = (levels == level).nonzero()[:, 0]
            pooled.append(self._align(feats[level], rois[inds], level))
            order.append(inds)
        order = torch.cat(order)
        # pooled rows are grouped by level; put each back at its RoI's position
        position = torch.zeros_like(order).scatter(0, order, _arange_like(order))
        return torch.cat(pooled)[position]


class BoxPredictor:
    """mmdet's ``BBoxHead._predict_by_feat_single`` + ``multiclass_nms`` for one image: softmax
    scores, class-specific (or agnostic) box decoding, score threshold, NMS within each class,
    the ``max_per_img`` best."""

    def __init__(self, bbox_head: nn.Module, rcnn_cfg) -> None:
        if getattr(bbox_head, 'custom_cls_channels', False):
            raise TypeError('a box head with a custom classification activation')
        self.num_classes = int(bbox_head.num_classes)
        self.class_agnostic = bool(bbox_head.reg_class_agnostic)
        self.decoder = DeltaDecoder(bbox_head.bbox_coder)
        self.score_thr = float(rcnn_cfg['score_thr'])
        self.iou = nms_iou(rcnn_cfg.get('nms'), 'rcnn test_cfg')
        self.max_per_img = int(rcnn_cfg['max_per_img'])

    def decode(self, rois: Tensor, deltas: Tensor, size: Tensor) -> Tensor:
        """(K, num_classes, 4) boxes, or (K, 1, 4) for class-agnostic regression."""
        priors = rois[:, 1:]
        if self.class_agnostic:
            return self.decoder(priors, deltas, size)[:, None, :]
        priors = priors[:, None, :].expand(-1, self.num_classes, 4).reshape(-1, 4)
        boxes = self.decoder(priors, deltas.reshape(-1, 4), size)
        return boxes.reshape(-1, self.num_classes, 4)

    def regress_by_class(self, rois: Tensor, cls_score: Tensor, deltas: Tensor,
                         size: Tensor) -> Tensor:
        """The cascade's refined RoIs: boxes of each RoI's best class (``regress_by_class``)."""
        boxes = self.decode(rois, deltas, size)
        if not self.class_agnostic:
            label = cls_score[:, :-1].argmax(dim=1)
            boxes = boxes.reshape(-1, 4)[_arange_like(label) * self.num_classes + label]
        else:
            boxes = boxes[:, 0]
        return rois_of(boxes)

    def __call__(self, rois: Tensor, cls_score: Tensor, deltas: Tensor, size: Tensor):
        scores = F.softmax(cls_score, dim=-1)[:, :-1]
        boxes = self.decode(rois, deltas, size).expand(-1, self.num_classes, 4)
        labels = torch.zeros_like(scores, dtype=torch.int64) + torch.arange(self.num_classes)
        boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
        valid = (scores > self.score_thr).nonzero()[:, 0]
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = batched_nms(boxes, scores, labels, self.iou)[:self.max_per_img]
        return boxes[keep], scores[keep], labels[keep]


def select_class(mask_probs: Tensor, labels: Tensor) -> Tensor:
    """(K, C, h, w) probabilities -> (K, h, w) of each detection's class (or the only one)."""
    if mask_probs.shape[1] == 1:
        return mask_probs[:, 0]
    num = mask_probs.shape[1]
    flat = mask_probs.reshape(-1, mask_probs.shape[2], mask_probs.shape[3])
    return flat[_arange_like(labels) * num + labels]


def mean_of(tensors: List[Tensor]) -> Tensor:
    return tensors[0] if len(tensors) == 1 else sum(tensors) / float(len(tensors))
