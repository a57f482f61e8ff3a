"""UperNet + ConvNeXt-L (IN-22K) on ADE20K at 640x640, the ConvNeXt paper's 160k recipe.

Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the official L/XL configs,
whose optimizer hook sets use_fp16=False.
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.4, layer
scale init 1.0, official IN-22K weights. Heads: UPerHead + auxiliary FCNHead on stage 2 (loss 0.4).
Test: single scale (resize to 2560x640, sliding 640x640 windows, stride 426);
multi-scale + flip with ``tools/test.py ... --tta``: the whole image at every scale (as the
official ``*_ms.py`` configs test), not windows.
Paper: 235M params, 2458G FLOPs at 2560x640, 53.2 mIoU single-scale (53.7 multi-scale + flip).
"""
_base_ = './upernet_convnext_b_in22k_640_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v1-large', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth')),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))

# fp32 as the official config (AmpOptimWrapper saves memory): replaces the inherited wrapper.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
