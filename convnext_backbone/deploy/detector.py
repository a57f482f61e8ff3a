"""Exportable wrapper of an mmdet two-stage instance-segmentation detector (Mask R-CNN, Cascade
Mask R-CNN) for one image: images -> boxes (K, 4) xyxy in input pixels, scores (K,), labels (K,)
int64 and masks (K, H, W) probabilities at the input size, as mmdet's ``predict(rescale=True)``
computes them for an image that was not resized (threshold the masks at ``mask_thr_binary``,
stored in the graph's metadata, for mmdet's binary masks).

The backbone, neck and heads' layers are the trained modules themselves; only the test-time
post-processing is re-expressed (``roi``) with standard ONNX operators.
"""
from torch import Tensor, nn

from .boxes import image_size
from .preprocess import Preprocess
from .roi import (
    BoxPredictor,
    MultiLevelRoIAlign,
    Proposals,
    mean_of,
    paste_masks,
    rois_of,
    select_class,
)


def _stages(module) -> list:
    return list(module) if isinstance(module, nn.ModuleList) else [module]


class DetectorExport(nn.Module):
    """Mask R-CNN / Cascade Mask R-CNN test path for a batch of one image."""

    output_names = ['boxes', 'scores', 'labels', 'masks']

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        roi_head = model.roi_head
        test_cfg = model.test_cfg
        self.preprocess = Preprocess(model.data_preprocessor)
        self.backbone = model.backbone
        self.neck = model.neck if getattr(model, 'with_neck', False) else None
        self.proposals = Proposals(model.rpn_head, test_cfg['rpn'])
        bbox_heads = _stages(roi_head.bbox_head)
        self.bbox_heads = nn.ModuleList(bbox_heads)
        self.bbox_extractors = nn.ModuleList(
            [MultiLevelRoIAlign(e) for e in _stages(roi_head.bbox_roi_extractor)])
        rcnn_cfg = test_cfg['rcnn']
        self.predictors = [BoxPredictor(head, rcnn_cfg) for head in bbox_heads]
        self.mask_heads = nn.ModuleList(_stages(roi_head.mask_head))
        mask_extractor = roi_head.bbox_roi_extractor if getattr(
            roi_head, 'share_roi_extractor', False) else roi_head.mask_roi_extractor
        self.mask_extractors = nn.ModuleList(
            [MultiLevelRoIAlign(e) for e in _stages(mask_extractor)])
        self.mask_thr_binary = float(rcnn_cfg.get('mask_thr_binary', 0.5))

    def forward(self, images: Tensor):
        feats = self.backbone(self.preprocess(images))
        if self.neck is not None:
            feats = self.neck(feats)
        size = image_size(images)
        rois = rois_of(self.proposals(feats, size))

        num_stages = len(self.bbox_heads)
        cls_scores = []
        for stage in range(num_stages):
            extractor = self.bbox_extractors[stage]
            cls_score, deltas = self.bbox_heads[stage](
                extractor(feats[:extractor.num_inputs], rois))
            cls_scores.append(cls_score)
            if stage < num_stages - 1:
                rois = self.predictors[stage].regress_by_class(rois, cls_score, deltas, size)
        boxes, scores, labels = self.predictors[-1](rois, mean_of(cls_scores), deltas, size)

        mask_rois = rois_of(boxes)
        probs = []
        for stage, head in enumerate(self.mask_heads):
            extractor = self.mask_extractors[min(stage, len(self.mask_extractors) - 1)]
            probs.append(head(extractor(feats[:extractor.num_inputs], mask_rois)).sigmoid())
        masks = paste_masks(select_class(mean_of(probs), labels), boxes, images)
        return boxes, scores, labels, masks
