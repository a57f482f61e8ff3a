"""Mask R-CNN + ConvNeXt-V2-Base (IN-1K) on COCO, 3x multi-scale.

Schedule: 3x (36 epochs). Total batch size: 16. The V2 recipe shared by every size, with the source
of each value: maskrcnn_convnextv2_tiny_3x_coco.py. This size differs only in: drop path 0.7 (as
V1-B (IN-1K) in the ConvNeXt paper's Cascade Mask R-CNN recipe); layer-wise lr decay 0.8 (as V1-B
in the paper's Cascade Mask R-CNN recipe (27 deep-stage blocks)).
"""
_base_ = './maskrcnn_convnextv2_tiny_3x_coco.py'

model = dict(
    backbone=dict(arch='v2-base', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_base_1k_224_ema.pt')),
    neck=dict(in_channels=[128, 256, 512, 1024]))

optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.8))
