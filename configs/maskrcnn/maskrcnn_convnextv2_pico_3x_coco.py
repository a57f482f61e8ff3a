"""Mask R-CNN + ConvNeXt-V2-Pico (IN-1K) on COCO, 3x multi-scale.

Schedule: 3x (36 epochs). Total batch size: 16. The V2 recipe shared by every size, with the source
of each value: maskrcnn_convnextv2_tiny_3x_coco.py. This size differs only in: drop path 0.1 (ours:
light regularisation for a small net; 0.1 is the V2 ImageNet fine-tuning value of atto).
"""
_base_ = './maskrcnn_convnextv2_atto_3x_coco.py'

model = dict(
    backbone=dict(arch='v2-pico', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_pico_1k_224_ema.pt')),
    neck=dict(in_channels=[64, 128, 256, 512]))
