"""DeepLabV3+ on a dilated ConvNeXt (output stride 16) with an auxiliary FCN head (mmseg 1.x).

mmseg's own ``deeplabv3plus_r50-d8.py`` (DepthwiseSeparableASPPHead: ASPP with image pooling,
512 channels, a 48-channel 1x1 projection of the stride-4 features as the decoder's low-level
input; FCNHead with loss weight 0.4 on the second-to-last output; SyncBN, reverted to BN by
mmengine's Runner outside distributed runs) with its ResNet-50-D8 replaced by
``convnext_backbone.ConvNeXt`` (``_delete_=True``).

Backbone outputs: stages 0, 2 and 3 (``out_indices=(0, 2, 3)``; stage 1 feeds no head, and an
output norm that gets no gradient would stop a distributed run). At ``output_stride=16`` stage 3
keeps stage 2's resolution (stride 16, dilated 7x7 depthwise convolutions): strides 4, 16, 16.
Wiring: ``decode_head.in_index=2`` (stage 3), ``c1_in_channels`` = stage 0's channels (the head
reads its low-level features from the first output), ``auxiliary_head.in_index=1`` (stage 2).
ASPP rates (1, 6, 12, 18) for output stride 16, as mmseg's ``-d16`` configs; (1, 12, 24, 36),
the ``-d8`` base's, for output stride 8.
Defaults: ConvNeXt-T, drop path 0.4, layer scale init 1.0, IN-1K weights, 512x512 crops, 150
ADE20K classes, whole-image inference (mmseg's DeepLabV3+ ADE20K recipe tests that way).
"""
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the base names a ResNet checkpoint here; ours is in backbone.init_cfg
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='convnext_backbone.ConvNeXt',
        arch='v1-tiny',
        out_indices=(0, 2, 3),
        output_stride=16,
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')),
    decode_head=dict(in_channels=768, in_index=2, c1_in_channels=96, dilations=(1, 6, 12, 18),
                     num_classes=150),
    auxiliary_head=dict(in_channels=384, in_index=1, num_classes=150))
