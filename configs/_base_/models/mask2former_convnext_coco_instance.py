"""Mask2Former with a ConvNeXt backbone on COCO instances: mmdet's own recipe, backbone swapped.

mmdet's ``mask2former_r50_8xb2-lsj-50e_coco.py`` (the base of its Swin instance configs) with the
ResNet replaced by ``convnext_backbone.ConvNeXt`` (``_delete_=True``): 4 outputs (strides 4-32)
into the MSDeformAttn pixel decoder (6 layers, 3 levels) and the 9-layer masked-attention
decoder, 100 queries, 80 classes, 1024x1024 large-scale jitter, 50 epochs as 368,750
iterations of batch 16 (x0.1 at 327,778 and 355,092); box and mask AP (CocoMetric).

Optimizer: the host's (mmdet's Swin Mask2Former recipes): AdamW lr 1e-4, wd 0.05, eps 1e-8,
gradient clipping at norm 0.01, fp32; ``custom_keys`` of the host: backbone lr x0.1,
``query_embed`` / ``query_feat`` / ``level_embed`` without weight decay, norms without weight
decay (``norm_decay_mult=0``). Ours on top, through
``convnext_backbone.LayerDecayOptimWrapperConstructor``: layer-wise lr decay 0.9 inside the
backbone (the ConvNeXt paper's rule; its top layer keeps the host's 0.1x, the stem of ConvNeXt-T
gets 0.1 x 0.9^7), heads at the full lr (top layer id); no weight decay on any bias, 1-D
parameter, layer scale or GRN parameter. Defaults: ConvNeXt-T, drop path 0.4 and layer scale 1.0
(the ConvNeXt paper's detection values for T), IN-1K weights.
"""
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py']

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

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
    panoptic_head=dict(in_channels=[96, 192, 384, 768]))

train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16, the host's batch, stated here

embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        decay_rate=0.9,
        decay_type='layer_wise',
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
