"""Cascade Mask R-CNN + ConvNeXt-B (IN-1K) on COCO, the ConvNeXt paper's 3x multi-scale recipe.

Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 2e-4, wd 0.05, layer-wise lr decay 0.8. Backbone: drop path 0.7, layer
scale init 1.0, official IN-1K weights. Heads: 4conv1fc box heads (SyncBN) with GIoU loss.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
Paper: 146M params, 964G FLOPs at 1280x800, 52.7 box AP / 45.6 mask AP.
"""
_base_ = './cascade_maskrcnn_convnext_s_3x_coco.py'

model = dict(
    backbone=dict(arch='v1-base', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))

optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.8))
