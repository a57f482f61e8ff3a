"""Cascade Mask R-CNN + ConvNeXt-T (IN-1K) on COCO, the ConvNeXt paper's 3x multi-scale recipe.

Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 2e-4, wd 0.05, layer-wise lr decay 0.7. Backbone: drop path 0.4, layer
scale init 1.0, official IN-1K weights. Heads: 4conv1fc box heads (SyncBN) with GIoU loss.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
Paper: 86M params, 741G FLOPs at 1280x800, 50.4 box AP / 43.7 mask AP.
"""
_base_ = [
    '../_base_/models/cascade_maskrcnn_convnext_fpn.py',
    '../_base_/datasets/coco_instance_ms_crop.py',
    '../_base_/schedules/det_adamw_3x.py',
    '../_base_/runtime/det_runtime.py',
]

# Model: the base's ConvNeXt-T as it stands. Optimizer: the schedule's but for lr and decay.
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=dict(decay_rate=0.7))
