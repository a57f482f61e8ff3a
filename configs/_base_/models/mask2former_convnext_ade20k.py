"""Mask2Former with a ConvNeXt backbone on ADE20K semantic: mmseg's own recipe, backbone swapped.

mmseg's ``mask2former_r50_8xb2-160k_ade20k-512x512.py`` (the base of its Swin-T/S configs) with
the ResNet replaced by ``convnext_backbone.ConvNeXt`` (``_delete_=True``): 4 outputs (strides
4-32) into mmseg's ``Mask2FormerHead`` (mmdet's head: MSDeformAttn pixel decoder, 6 layers, 3
levels; 9-layer masked-attention decoder; 100 queries; 150 classes), 512x512 crops of
shortest-edge resizes 256-1024, whole-image test at 2048x512, 160k iterations of batch 16 with
poly decay (power 0.9) and no warm-up, as the host.

Optimizer: the host's (mmseg's Swin Mask2Former recipes): AdamW lr 1e-4, wd 0.05, eps 1e-8,
gradient clipping at norm 0.01, fp32; ``custom_keys`` of the host: backbone lr x0.1,
``query_embed`` / ``query_feat`` / ``level_embed`` without weight decay, norms without weight
decay. Ours on top, through ``convnext_backbone.LayerDecayOptimWrapperConstructor``: stage-wise
lr decay 0.9 inside the backbone (the ConvNeXt paper's UperNet rule; its top keeps the host's
0.1x), heads at the full lr (top layer id); no weight decay on any bias, 1-D parameter, layer
scale or GRN parameter. Defaults: ConvNeXt-T, drop path 0.4 and layer scale 1.0 (the ConvNeXt
paper's UperNet values for T), IN-1K weights.
"""
_base_ = ['mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py']

# mmdet.models as the host: the head and its losses are mmdet's.
custom_imports = dict(imports=['mmdet.models', 'convnext_backbone'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='convnext_backbone.ConvNeXt',
        arch='v1-tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]))

embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        decay_rate=0.9,
        decay_type='stage_wise',
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        },
        norm_decay_mult=0.0))

default_hooks = dict(checkpoint=dict(type='convnext_backbone.CrashSafeCheckpointHook'))
custom_hooks = [dict(type='convnext_backbone.NonFiniteLossHook'),
                dict(type='convnext_backbone.RNGStateHook')]
