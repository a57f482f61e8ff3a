"""Exportable wrapper of an mmdet two-stage instance-segmentation detector (Mask R-CNN, Cascade
Mask R-CNN) for one image, as the test pipeline resized it (unpadded): images -> boxes (K, 4)
xyxy in input pixels, clipped to the unpadded image as mmdet clips to ``img_shape``, scores (K,),
labels (K,) int64, and masks (K, 28, 28): each detection's mask probabilities at the mask head's
resolution (mmdet's ``mask_preds`` of the detection's class, sigmoid applied, averaged over a
cascade's stages). mmdet pastes them into the image (bilinear, inside each box) and thresholds
them at ``mask_thr_binary``; :mod:`.paste` does the same after the graph, at whatever size the
user wants (the original image's, with boxes divided by the resize's scale factor, for mmdet's
own result): full-size float masks would cost K x H x W x 4 bytes inside the graph.

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
        head = self.mask_heads[-1]
        upsample = getattr(head, 'scale_factor', None) if getattr(head, 'upsample', None) \
            is not None else 1
        self.mask_size = tuple(int(s * (upsample or 1))
                               for s in self.mask_extractors[-1].output_size)

    def forward(self, images: Tensor):
        size = image_size(images)  # the unpadded size: mmdet clips to img_shape, not pad_shape
        feats = self.backbone(self.preprocess(images))
        if self.neck is not None:
            feats = self.neck(feats)
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
        return boxes, scores, labels, select_class(mean_of(probs), labels)
