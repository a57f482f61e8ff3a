"""UperNet + ConvNeXt-V2-Tiny (IN-1K) on ADE20K at 512x512, 160k iterations.

ConvNeXt-V2 (GRN, no layer scale) in the ConvNeXt paper's UperNet recipe for IN-1K backbones.
The V2 paper gives no UperNet hyper-parameters for this size: the values below are ours.
Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay to 0 (V1 recipe).
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9 (V1 UperNet T/S/B recipe).
Backbone: drop path 0.4 (as V1-T in the ConvNeXt paper's UperNet recipe);
official V2 IN-1K fine-tuned (EMA) weights.
Test: single scale (resize to 2048x512, sliding 512x512 windows, stride 341);
multi-scale + flip with ``tools/test.py ... --tta``: the whole image at every scale (as the
V1 recipe's official ``*_ms.py`` configs test), not windows.
"""
_base_ = './upernet_convnext_t_160k_ade20k.py'

model = dict(
    backbone=dict(
        arch='v2-tiny',
        layer_scale_init_value=None,  # the arch default: V2 has no layer scale (GRN instead)
        init_cfg=dict(
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
            'convnextv2_tiny_1k_224_ema.pt')))
