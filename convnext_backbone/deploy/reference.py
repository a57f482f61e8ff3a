"""The eager model's own results for an image batch fed as the exported graph takes it: the
numbers the ONNX graph must reproduce (tests, ``tools/benchmark_onnx.py``).

The batch goes through the model's ``test_step`` (its data preprocessor, then its ``predict``)
with image metas saying the image was not resized, so mmdet/mmseg compute exactly what the graph
is meant to.
"""
from typing import Dict

import torch
from torch import Tensor, nn


@torch.no_grad()
def eager_detections(model: nn.Module, image: Tensor) -> Dict[str, Tensor]:
    """mmdet ``predict(rescale=True)`` of one (1, 3, H, W) image: boxes, scores, labels, binary
    masks (bool, H x W)."""
    from mmdet.structures import DetDataSample
    height, width = image.shape[2:]
    sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                         scale_factor=(1.0, 1.0)))
    result = model.test_step(dict(inputs=[image[0]], data_samples=[sample]))[0].pred_instances
    return dict(boxes=result.bboxes, scores=result.scores, labels=result.labels,
                masks=result.masks)


@torch.no_grad()
def eager_seg_logits(model: nn.Module, images: Tensor) -> Tensor:
    """mmseg ``predict`` seg logits (N, C, H, W) of a batch (no resize, no padding)."""
    results = model.test_step(dict(inputs=list(images)))
    return torch.stack([r.seg_logits.data for r in results])
