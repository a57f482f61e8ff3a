"""Cascade Mask R-CNN + ConvNeXt-L (IN-22K) on COCO, the ConvNeXt paper's 3x multi-scale recipe.

Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the official L/XL configs,
whose optimizer hook sets use_fp16=False.
Optimizer: AdamW lr 1e-4, wd 0.05, layer-wise lr decay 0.7. Backbone: drop path 0.7, layer
scale init 1.0, official IN-22K weights. Heads: 4conv1fc box heads (SyncBN) with GIoU loss.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
Paper: 255M params, 1354G FLOPs at 1280x800, 54.8 box AP / 47.6 mask AP.
"""
_base_ = './cascade_maskrcnn_convnext_b_in22k_3x_coco.py'

model = dict(
    backbone=dict(arch='v1-large', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))

# fp32 as the official config (AmpOptimWrapper saves memory): replaces the inherited wrapper.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise'))
