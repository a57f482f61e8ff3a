"""UperNet + ConvNeXt-S (IN-1K) on ADE20K at 512x512, the ConvNeXt paper's 160k recipe.

Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.3, layer
scale init 1.0, official IN-1K weights. Heads: UPerHead + auxiliary FCNHead on stage 2 (loss 0.4).
Test: single scale (resize to 2048x512, sliding 512x512 windows, stride 341);
multi-scale + flip with ``tools/test.py ... --tta``: the whole image at every scale (as the
official ``*_ms.py`` configs test), not windows.
Paper: 82M params, 1027G FLOPs at 2048x512, 48.7 mIoU single-scale (49.6 multi-scale + flip).
"""
_base_ = './upernet_convnext_t_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v1-small', drop_path_rate=0.3, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224.pth')))
