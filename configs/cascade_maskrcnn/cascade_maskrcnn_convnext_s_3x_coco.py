"""Cascade Mask R-CNN + ConvNeXt-S (IN-1K) on COCO, the ConvNeXt paper's 3x multi-scale recipe.

Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 2e-4, wd 0.05, layer-wise lr decay 0.7. Backbone: drop path 0.6, layer
scale init 1.0, official IN-1K weights. Heads: 4conv1fc box heads (SyncBN) with GIoU loss.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
Paper: 108M params, 827G FLOPs at 1280x800, 51.9 box AP / 45.0 mask AP.
"""
_base_ = './cascade_maskrcnn_convnext_t_3x_coco.py'

model = dict(
    backbone=dict(arch='v1-small', drop_path_rate=0.6, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224.pth')))
