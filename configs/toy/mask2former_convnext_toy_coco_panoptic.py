"""Toy: the Mask2Former ConvNeXt-T COCO panoptic config, shrunk to learn on 2 CPU cores in a minute.

Inherits configs/mask2former/mask2former_convnext_t_50e_coco_panoptic.py unchanged in kind (the
same large-scale-jitter pipeline types with panoptic annotations, fixed-size batch padding,
Hungarian matching, losses, panoptic fusion, layer-decay optimizer constructor with the host's
custom_keys, hooks) and shrinks the sizes as configs/toy/mask2former_convnext_toy_coco.py does, on
the generated toy COCO-panoptic set (``tools/make_toy_data.py --panoptic``: the 4 shape classes as
things, one "background" stuff class). Evaluated by PQ (mmdet's CocoPanopticMetric) and by mask
AP of the things (CocoMetric on the same images' instances json). mmdet reads panoptic PNGs
(LoadPanopticAnnotations) and computes PQ with ``panopticapi``, which is not on PyPI: ``pip
install git+https://github.com/cocodataset/panopticapi.git``.
Total batch 8 (1 process x 8 images).
"""
_base_ = ['../mask2former/mask2former_convnext_t_50e_coco_panoptic.py']

data_root = 'data/toy/coco/'
things = ('rectangle', 'ellipse', 'triangle', 'star')
stuff = ('background',)
metainfo = dict(classes=things + stuff, thing_classes=things, stuff_classes=stuff)
num_things, num_stuff = len(things), len(stuff)
width = 64
image_size = (64, 64)

model = dict(
    data_preprocessor=dict(batch_augments=[dict(
        type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
        mask_pad_value=0, pad_seg=True, seg_pad_value=255)]),
    backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                  drop_path_rate=0.05, init_cfg=None),
    panoptic_head=dict(
        in_channels=[32, 64, 128, 256],
        feat_channels=width,
        out_channels=width,
        num_things_classes=num_things,
        num_stuff_classes=num_stuff,
        num_queries=10,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(num_layers=1, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=width, num_heads=4),
                ffn_cfg=dict(embed_dims=width, feedforward_channels=128))),
            positional_encoding=dict(num_feats=width // 2)),
        positional_encoding=dict(num_feats=width // 2),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=width, num_heads=4),
            cross_attn_cfg=dict(embed_dims=width, num_heads=4),
            ffn_cfg=dict(embed_dims=width, feedforward_channels=256))),
        loss_cls=dict(class_weight=[1.0] * (num_things + num_stuff) + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things, num_stuff_classes=num_stuff),
    train_cfg=dict(num_points=1024),
    test_cfg=dict(max_per_image=20))

train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
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
val_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/', nproc=1),
    dict(type='CocoMetric', metric=['segm'],
         ann_file=data_root + 'annotations/instances_val2017.json'),
]
test_evaluator = val_evaluator

max_iters = 40
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
param_scheduler = dict(_delete_=True, type='MultiStepLR', begin=0, end=max_iters,
                       by_epoch=False, milestones=[35], gamma=0.1)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
