"""UperNet + ConvNeXt-V2-Nano (IN-1K) on ADE20K at 512x512, 160k iterations.

ConvNeXt-V2 (GRN, no layer scale) in the ConvNeXt paper's UperNet recipe for IN-1K backbones.
The V2 paper gives no UperNet hyper-parameters for this size: the values below are ours.
Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay to 0 (V1 recipe).
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9 (V1 UperNet T/S/B recipe).
Backbone: drop path 0.2 (ours: between atto's 0.1 and tiny's; 0.2 is
the V2 ImageNet fine-tuning value of tiny);
official V2 IN-1K fine-tuned (EMA) weights.
Test: single scale (resize to 2048x512, sliding 512x512 windows, stride 341);
multi-scale + flip with ``tools/test.py ... --tta`` (mmseg's ``tta_pipeline``/``tta_model``).
"""
_base_ = [
    './_base_/models/upernet_convnext.py',
    './_base_/datasets/ade20k_512x512.py',
    './_base_/schedules/seg_adamw_160k.py',
    'mmseg::_base_/default_runtime.py',
]

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='convnext_backbone.ConvNeXt',
        arch='v2-nano',
        drop_path_rate=0.2,
        layer_scale_init_value=None,  # the arch default: V2 has no layer scale (GRN instead)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
            'convnextv2_nano_1k_224_ema.pt')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
