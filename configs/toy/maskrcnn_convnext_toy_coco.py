"""Toy: the flagship Mask R-CNN config, shrunk to run on 2 CPU cores in minutes (`make demo`).

Inherits configs/maskrcnn_convnext_t_coco.py unchanged in kind (the same multi-scale + crop
pipeline types, the same layer-decay optimizer constructor, hooks and evaluator) and shrinks the
sizes: a small ConvNeXt from scratch, 64-channel FPN/heads, 128-pixel images of the generated toy
set (tools/make_toy_data.py: 4 shape classes, polygon and RLE masks), a short schedule.
Total batch 8 (1 process x 8 images).
"""
_base_ = ['../maskrcnn/maskrcnn_convnext_t_3x_coco.py']

data_root = 'data/toy/coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle', 'star'))
num_classes = 4
width = 64

model = dict(
    backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                  drop_path_rate=0.05, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width,
                  anchor_generator=dict(scales=[4])),  # 16..256-pixel anchors for small images
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=num_classes)),
    # A few objects an image: far fewer proposals and sampled RoIs than COCO needs.
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=20)))

scales = [(short, 213) for short in range(96, 161, 16)]  # the flagship's 480..800, scaled by 1/5
train_pipeline = [
    dict(type='convnext_backbone.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(80, 213), (100, 213), (120, 213)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(77, 120),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
    ]),
    dict(type='PackDetInputs'),
]
test_pipeline = [  # the host's loader, as the full-size configs: the inferencers look for it
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 213), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline,
                 filter_cfg=dict(filter_empty_gt=True, min_size=8)))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[10],
         gamma=0.1),
]
# fp32 (no AMP: the toy runs on CPU, also under mmdet's/mmseg's own tools), same constructor.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise'))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
