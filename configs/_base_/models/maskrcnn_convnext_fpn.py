"""Mask R-CNN + FPN with a ConvNeXt backbone (mmdet 3.x).

mmdet's own ``mask-rcnn_r50_fpn.py`` with the ResNet replaced by ``convnext_backbone.ConvNeXt``.
The defaults are ConvNeXt-T with the detection settings of the ConvNeXt paper (drop path 0.4,
layer scale 1.0) and the official ImageNet-1K weights; size configs override ``arch``,
``drop_path_rate``, ``init_cfg.checkpoint`` and the neck's ``in_channels`` (which must equal the
backbone's ``out_channels``: tests/configs checks every config).
"""
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']

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
    neck=dict(in_channels=[96, 192, 384, 768]))
