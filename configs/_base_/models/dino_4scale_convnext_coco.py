"""DINO (4 scales) with a ConvNeXt backbone on COCO detection: mmdet's own recipe, backbone swapped.

mmdet's ``dino-4scale_r50_8xb2-12e_coco.py`` with the ResNet replaced by
``convnext_backbone.ConvNeXt`` (``_delete_=True``): stages 1-3 (strides 8, 16, 32) into the
``ChannelMapper`` neck, which adds a fourth level (stride 64) by a strided conv, as the host's
4-scale ResNet-50 (mmdet's Swin-L DINO is its 5-scale variant); 6-layer deformable encoder and
decoder, 900 queries, contrastive denoising (100 queries), two-stage with box refinement;
DETR-style multi-scale 480-800 training with random crop, 1333x800 test; 12 epochs of batch
16 (x0.1 at epoch 11).

Optimizer: the host's: AdamW lr 1e-4, wd 1e-4, gradient clipping at norm 0.1, fp32, backbone
lr x0.1 (``custom_keys``). Ours on top, through
``convnext_backbone.LayerDecayOptimWrapperConstructor``: layer-wise lr decay 0.9 inside the
backbone (the ConvNeXt paper's rule; its top layer keeps the host's 0.1x), neck, transformer
and head at the full lr (top layer id); no weight decay on any bias or 1-D parameter (the host
decays them with 1e-4), layer scale or GRN parameter, nor on the tables of ``nn.Embedding``
modules (``query_embedding``, the denoising ``label_embedding``: the constructor's one rule for
every head; the host decays them with 1e-4); ``level_embed``, a bare parameter, keeps the host's
decay. Defaults: ConvNeXt-T, drop path 0.4 and layer scale 1.0
(the ConvNeXt paper's detection values for T), IN-1K weights.
"""
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='convnext_backbone.ConvNeXt',
        arch='v1-tiny',
        out_indices=(1, 2, 3),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')),
    neck=dict(in_channels=[192, 384, 768]))

train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16, the host's batch, stated here
auto_scale_lr = dict(enable=False, base_batch_size=16)

optim_wrapper = dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='layer_wise'))

default_hooks = dict(checkpoint=dict(type='convnext_backbone.CrashSafeCheckpointHook'))
custom_hooks = [dict(type='convnext_backbone.NonFiniteLossHook'),
                dict(type='convnext_backbone.RNGStateHook')]
