"""Mask R-CNN + ConvNeXt-V2-Tiny (IN-1K) on COCO, 3x multi-scale.

ConvNeXt-V2 (GRN, no layer scale) in the ConvNeXt paper's Mask R-CNN 3x recipe. The V2 paper gives
no Mask R-CNN 3x hyper-parameters for this size: the values below are ours, each with its source.
Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up (V1 recipe).
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05 (V1-T Mask R-CNN recipe); layer-wise lr decay 0.95
(as V1-T in the paper's Mask R-CNN 3x recipe).
Backbone: drop path 0.4 (as V1-T in the ConvNeXt paper's Mask R-CNN 3x recipe);
official V2 IN-1K fine-tuned (EMA) weights.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
"""
_base_ = './maskrcnn_convnext_t_3x_coco.py'

model = dict(
    backbone=dict(
        arch='v2-tiny',
        layer_scale_init_value=None,  # the arch default: V2 has no layer scale (GRN instead)
        init_cfg=dict(
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
            'convnextv2_tiny_1k_224_ema.pt')))
