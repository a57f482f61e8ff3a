"""Test-only: the Cascade Mask R-CNN config shrunk like configs/toy (small ConvNeXt, 64-channel
FPN and heads, the toy's 4 classes, its 128x213 test resize), for the deployment tests."""
_base_ = ['../../configs/_base_/models/cascade_maskrcnn_convnext_fpn.py',
          'mmdet::_base_/default_runtime.py']

width = 64
model = dict(
    backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                  drop_path_rate=0.05, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=[
            dict(type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=width,
                 conv_out_channels=width, fc_out_channels=128, roi_feat_size=7, num_classes=4,
                 norm_cfg=dict(type='SyncBN', requires_grad=True),
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=stds),
                 reg_class_agnostic=agnostic, reg_decoded_bbox=True,
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
            # the last stage class-agnostic, to export both kinds of regression
            for stds, agnostic in (([0.1, 0.1, 0.2, 0.2], False),
                                   ([0.05, 0.05, 0.1, 0.1], False),
                                   ([0.033, 0.033, 0.067, 0.067], True))],
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=4)),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=20)))

metainfo = dict(classes=('rectangle', 'ellipse', 'triangle', 'star'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 213), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]
test_dataloader = dict(dataset=dict(type='CocoDataset', metainfo=metainfo,
                                    pipeline=test_pipeline))
