"""Cascade Mask R-CNN + FPN with a ConvNeXt backbone, 4conv1fc box heads and GIoU loss (mmdet 3.x).

mmdet's own ``cascade-mask-rcnn_r50_fpn.py`` with the ResNet replaced by
``convnext_backbone.ConvNeXt`` and the three ``Shared2FCBBoxHead`` replaced by the heads of the
ConvNeXt paper's cascade configs: ``ConvFCBBoxHead`` with 4 shared 3x3 convs (SyncBN, as in the
official code and in mmdet's own ConvNeXt cascade configs; reverted to BN by mmengine's Runner
outside distributed runs) and 1 shared fc, class-specific regression of decoded boxes with
GIoU loss (weight 10). Backbone defaults: ConvNeXt-T, drop path 0.4, layer scale 1.0, IN-1K weights.
"""
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py']

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
    neck=dict(in_channels=[96, 192, 384, 768]),
    roi_head=dict(bbox_head=[
        dict(type='ConvFCBBoxHead',
             num_shared_convs=4,
             num_shared_fcs=1,
             in_channels=256,
             conv_out_channels=256,
             fc_out_channels=1024,
             roi_feat_size=7,
             num_classes=80,
             norm_cfg=dict(type='SyncBN', requires_grad=True),
             bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                             target_stds=stds),
             reg_class_agnostic=False,
             reg_decoded_bbox=True,
             loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
             loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        # the three cascade stages differ only in their box-delta normalisation
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
    ]))
