"""UperNet + ConvNeXt-B (IN-1K) on ADE20K at 512x512, the ConvNeXt paper's 160k recipe.

Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.4, layer
scale init 1.0, official IN-1K weights. Heads: UPerHead + auxiliary FCNHead on stage 2 (loss 0.4).
Test: single scale (resize to 2048x512, sliding 512x512 windows, stride 341);
multi-scale + flip with ``tools/test.py ... --tta`` (mmseg's ``tta_pipeline``/``tta_model``).
Paper: 122M params, 1170G FLOPs at 2048x512, 49.1 mIoU single-scale (49.9 multi-scale + flip).
"""
_base_ = [
    './_base_/models/upernet_convnext.py',
    './_base_/datasets/ade20k_512x512.py',
    './_base_/schedules/seg_adamw_160k.py',
    'mmseg::_base_/default_runtime.py',
]

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        type='convnext_backbone.ConvNeXt',
        arch='v1-base',
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
