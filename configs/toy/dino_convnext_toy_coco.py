"""Toy: the DINO 4-scale ConvNeXt-T COCO config, shrunk to learn on 2 CPU cores in a minute.

Inherits configs/dino/dino_4scale_convnext_t_12e_coco.py unchanged in kind (the same multi-scale
+ crop pipeline types, two-stage query selection with box refinement, contrastive denoising,
Hungarian matching, losses, layer-decay optimizer constructor, hooks and evaluator) and shrinks
the sizes: a small ConvNeXt from scratch, 1 encoder and 2 decoder layers with 256-wide FFNs, 20
queries and 10 denoising queries, 64-pixel images of the generated toy COCO
set (tools/make_toy_data.py: 4 shape classes), a short schedule. The backbone's lr multiplier
is 1 (the host's 0.1 is for pretrained backbones; this one starts from scratch).
The transformer stays 256 channels wide: mmdet's DINO decoder encodes reference points with
a fixed 128 features per coordinate (512 channels), which fixes embed_dims at 256.
Total batch 8 (1 process x 8 images).
"""
_base_ = ['../dino/dino_4scale_convnext_t_12e_coco.py']

data_root = 'data/toy/coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle', 'star'))
num_classes = 4

model = dict(
    num_queries=20,
    backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                  drop_path_rate=0.05, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256]),
    encoder=dict(num_layers=1, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256))),
    decoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256))),
    bbox_head=dict(num_classes=num_classes),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=10)),
    test_cfg=dict(max_per_img=20))

scales = [(short, 107) for short in range(48, 81, 8)]  # the host's 480..800, scaled by 1/10
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(40, 420), (50, 420), (60, 420)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(38, 60),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
    ]),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 107), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_iters = 40
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
                        milestones=[35], gamma=0.1)]
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
