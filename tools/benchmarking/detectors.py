"""The two Mask R-CNN ConvNeXt-T detectors of the benchmark, our config and mmdet's own (whose
backbone is mmpretrain's), and a synthetic batch for them.
"""
import torch

from .host_models import build_pair

# mmdet's own ConvNeXt-T Mask R-CNN (mmpretrain backbone), from the installed mmdet
MASKRCNN_MMDET = 'mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'


def build_detectors(ours_config: str, theirs_config: str = MASKRCNN_MMDET, seed: int = 0):
    """``{'ours': (model, optim_wrapper), 'mmdet': (...)}`` with identical weights."""
    return build_pair(ours_config, theirs_config, 'mmdet', seed)


def detection_batch(batch: int, size: int, num_boxes: int = 4, seed: int = 0,
                    height: int = None) -> dict:
    """Random uint8 images of ``height`` (default ``size``) x ``size`` and ground truth (boxes,
    labels, bitmap masks) as DetDataSamples."""
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = height or size, size
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen))
        xy = torch.rand(num_boxes, 2, generator=gen) * min(h, w) * 0.6
        wh = min(h, w) * (0.1 + 0.3 * torch.rand(num_boxes, 2, generator=gen))
        boxes = torch.cat([xy, (xy + wh).clamp(max=min(h, w) - 1)], 1)
        masks = np.zeros((num_boxes, h, w), dtype=np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(boxes.round().int().tolist()):
            masks[k, y0:y1, x0:x1] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1.0, 1.0), flip=False))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(0, 80, (num_boxes,), generator=gen),
            masks=BitmapMasks(masks, h, w))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
