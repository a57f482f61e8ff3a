"""UperNet + ConvNeXt-XL (IN-22K) on ADE20K at 640x640, the ConvNeXt paper's 160k recipe.

Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the official L/XL configs,
whose optimizer hook sets use_fp16=False.
Optimizer: AdamW lr 8e-5, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.4, layer
scale init 1.0, official IN-22K weights. Heads: UPerHead + auxiliary FCNHead on stage 2 (loss 0.4).
Test: single scale (resize to 2560x640, sliding 640x640 windows, stride 426);
multi-scale + flip with ``tools/test.py ... --tta``: the whole image at every scale (as the
official ``*_ms.py`` configs test), not windows.
Paper: 391M params, 3335G FLOPs at 2560x640, 53.6 mIoU single-scale (54.0 multi-scale + flip).
"""
_base_ = './upernet_convnext_l_in22k_640_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v1-xlarge', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))

optim_wrapper = dict(optimizer=dict(lr=8e-5))
