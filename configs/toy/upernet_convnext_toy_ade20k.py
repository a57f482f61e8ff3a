"""Toy: the UperNet ConvNeXt-T ADE20K config, shrunk to run on 2 CPU cores in minutes.

Inherits configs/upernet/upernet_convnext_t_160k_ade20k.py (same pipeline types, stage-wise
layer-decay
constructor, UPerHead + auxiliary FCN head on stage 2, mIoU evaluator) and shrinks the sizes: a
small ConvNeXt from scratch, 64-channel heads, 96-pixel crops of the generated toy ADE20K-layout
set (tools/make_toy_data.py: sky, ground and three shape classes), a short schedule.
Total batch 8 (1 process x 8 images). Validation and testing take one image at a time, as mmseg's
own configs do: the test pipeline keeps each image's aspect ratio, so images of mixed sizes give
tensors of mixed sizes, which mmseg's data preprocessor refuses to batch at test time.
"""
_base_ = ['../upernet/upernet_convnext_t_160k_ade20k.py']

data_root = 'data/toy/ade/ADEChallengeData2016'
metainfo = dict(classes=('sky', 'ground', 'rectangle', 'ellipse', 'triangle'))
crop_size = (96, 96)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                  drop_path_rate=0.05, init_cfg=None),
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64, num_classes=5),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=5),
    test_cfg=dict(_delete_=True, mode='whole'))

# The toy classes are not a subset of ADE20K's 150, which ADE20KDataset insists on: the generic
# dataset class reads the same layout with the same label convention (0 = ignored "other").
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
train_pipeline = [
    dict(type='convnext_backbone.CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # the host's loader, as the full-size configs: the inferencers look for it
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(**dataset, pipeline=train_pipeline,
                                     data_prefix=dict(img_path='images/training',
                                                      seg_map_path='annotations/training')))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(**dataset, pipeline=test_pipeline,
                                   data_prefix=dict(img_path='images/validation',
                                                    seg_map_path='annotations/validation')))
test_dataloader = val_dataloader

max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=30, end=max_iters),
]
# fp32 (no AMP: the toy runs on CPU, also under mmdet's/mmseg's own tools), same constructor.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
