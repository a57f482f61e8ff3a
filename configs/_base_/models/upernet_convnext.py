"""UperNet with a ConvNeXt backbone and an auxiliary FCN head on stage 2 (mmseg 1.x).

mmseg's own ``upernet_r50.py`` with the ResNet replaced by ``convnext_backbone.ConvNeXt``
(``_delete_=True``). mmseg's ``upernet_convnext.py`` is not used: it names mmpretrain's ConvNeXt.
Heads as in the ConvNeXt paper: UPerHead (512 channels) on all four stages, FCNHead
(256 channels, loss weight 0.4) on stage 2, SyncBN (reverted to BN by mmengine's Runner outside
distributed runs), 150 ADE20K classes. Defaults: ConvNeXt-T, drop path 0.4, layer scale 1.0,
IN-1K weights, 512x512 crops with sliding-window inference (stride 341), as the official configs.
"""
_base_ = ['mmseg::_base_/models/upernet_r50.py']

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the base names a ResNet checkpoint here; ours is in backbone.init_cfg
    data_preprocessor=dict(size=(512, 512)),
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
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, in_index=2, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
