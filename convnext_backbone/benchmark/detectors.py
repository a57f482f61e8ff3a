"""The two Mask R-CNN ConvNeXt-T detectors of the benchmark: our config and mmdet's own (whose
backbone is mmpretrain's), with identical weights, and a synthetic training batch.
"""
import torch

from convnext_backbone.checkpoint import load_pretrained

from .peers import realistic_weights_

# mmdet's own ConvNeXt-T Mask R-CNN (mmpretrain backbone), from the installed mmdet
MASKRCNN_MMDET = 'mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'


def _load_cfg(path: str):
    """A config file, or ``'mmdet::...'`` from the installed mmdet (mmengine's ``get_config``).
    ``custom_imports`` (ours, or mmdet's import of mmpretrain) are imported on loading."""
    from mmengine.config import Config
    from mmengine.hub import get_config
    return get_config(path) if '::' in path else Config.fromfile(path)


def build_detector(path: str):
    """(model in train mode, fp32 OptimWrapper) from a config, backbone ``init_cfg=None``; the
    config's own optimizer constructor (ours: layer decay; mmdet's: its LR-decay constructor)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    cfg = _load_cfg(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim = cfg.optim_wrapper.copy()
    optim.type = 'OptimWrapper'  # fp32 on CPU (AmpOptimWrapper needs a GPU)
    optim.pop('loss_scale', None)
    return model.train(), build_optim_wrapper(model, optim)


def build_detectors(ours_config: str, theirs_config: str = MASKRCNN_MMDET, seed: int = 0):
    """``{'ours': (model, optim_wrapper), 'mmdet': (...)}`` with identical weights: the backbone
    converted from mmdet's (mmpretrain) backbone by our loader, every other module copied."""
    torch.manual_seed(seed)
    theirs, their_optim = build_detector(theirs_config)
    realistic_weights_(theirs.backbone, seed)
    ours, our_optim = build_detector(ours_config)
    load_pretrained(ours.backbone, theirs.backbone.state_dict(), logger='silent')
    their_sd = theirs.state_dict()
    rest = {k: v for k, v in ours.state_dict().items() if not k.startswith('backbone.')}
    missing = [k for k in rest if k not in their_sd or their_sd[k].shape != rest[k].shape]
    if missing:
        raise RuntimeError(f'Mask R-CNN configs differ outside the backbone: {missing[:5]}')
    with torch.no_grad():
        for key, value in rest.items():
            value.copy_(their_sd[key])
    return {'ours': (ours, our_optim), 'mmdet': (theirs, their_optim)}


def detection_batch(batch: int, size: int, num_boxes: int = 4, seed: int = 0) -> dict:
    """Random uint8 images and ground truth (boxes, labels, bitmap masks) as DetDataSamples."""
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        xy = torch.rand(num_boxes, 2, generator=gen) * size * 0.6
        wh = size * (0.1 + 0.3 * torch.rand(num_boxes, 2, generator=gen))
        boxes = torch.cat([xy, (xy + wh).clamp(max=size - 1)], 1)
        masks = np.zeros((num_boxes, size, size), dtype=np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(boxes.round().int().tolist()):
            masks[k, y0:y1, x0:x1] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0), flip=False))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(0, 80, (num_boxes,), generator=gen),
            masks=BitmapMasks(masks, size, size))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def first_loss(model, data) -> float:
    """The loss of ``data`` before any update, stochastic depth off (its random masks are drawn
    differently by the two backbones), the same seed for the samplers: equal models, equal loss."""
    drop = {m: m.drop_prob for m in model.modules() if hasattr(m, 'drop_prob')}
    for m in drop:
        m.drop_prob = 0.
    torch.manual_seed(0)
    with torch.no_grad():
        batch = model.data_preprocessor(data, True)
        loss = float(model.parse_losses(model(**batch, mode='loss'))[0])
    for m, p in drop.items():
        m.drop_prob = p
    return loss
