"""Mask R-CNN + ConvNeXt-V2-Base (IN-1K) on COCO, 3x multi-scale.

ConvNeXt-V2 (GRN, no layer scale) in the ConvNeXt paper's Mask R-CNN 3x recipe. The V2 paper gives
no Mask R-CNN 3x hyper-parameters for this size: the values below are ours, each with its source.
Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up (V1 recipe).
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05 (V1-T Mask R-CNN recipe); layer-wise lr decay 0.8
(as V1-B in the paper's Cascade Mask R-CNN recipe (27 deep-stage blocks)).
Backbone: drop path 0.7 (as V1-B (IN-1K) in the ConvNeXt paper's Cascade Mask R-CNN recipe);
official V2 IN-1K fine-tuned (EMA) weights.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
"""
_base_ = './maskrcnn_convnextv2_tiny_coco.py'

model = dict(
    backbone=dict(arch='v2-base', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_base_1k_224_ema.pt')),
    neck=dict(in_channels=[128, 256, 512, 1024]))

optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.8))
