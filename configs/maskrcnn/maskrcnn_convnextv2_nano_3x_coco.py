"""Mask R-CNN + ConvNeXt-V2-Nano (IN-1K) on COCO, 3x multi-scale.

Schedule: 3x (36 epochs). Total batch size: 16. The V2 recipe shared by every size, with the source
of each value: maskrcnn_convnextv2_tiny_3x_coco.py. This size differs only in: drop path 0.2 (ours:
between atto's 0.1 and tiny's; 0.2 is the V2 ImageNet fine-tuning value of tiny).
"""
_base_ = './maskrcnn_convnextv2_tiny_3x_coco.py'

model = dict(
    backbone=dict(arch='v2-nano', drop_path_rate=0.2, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_nano_1k_224_ema.pt')),
    neck=dict(in_channels=[80, 160, 320, 640]))
