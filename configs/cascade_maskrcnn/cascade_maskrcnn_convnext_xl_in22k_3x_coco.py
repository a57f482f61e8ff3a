"""Cascade Mask R-CNN + ConvNeXt-XL (IN-22K) on COCO, the ConvNeXt paper's 3x multi-scale recipe.

Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the official L/XL configs,
whose optimizer hook sets use_fp16=False.
Optimizer: AdamW lr 1e-4, wd 0.05, layer-wise lr decay 0.7. Backbone: drop path 0.8, layer
scale init 1.0, official IN-22K weights. Heads: 4conv1fc box heads (SyncBN) with GIoU loss.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
Paper: 407M params, 1898G FLOPs at 1280x800, 55.2 box AP / 47.7 mask AP.
"""
_base_ = './cascade_maskrcnn_convnext_l_in22k_3x_coco.py'

model = dict(
    backbone=dict(arch='v1-xlarge', drop_path_rate=0.8, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
