"""Toy: the Mask2Former ConvNeXt-T COCO instance config, shrunk to learn on 2 CPU cores in a minute.

Inherits configs/mask2former/mask2former_convnext_t_50e_coco.py unchanged in kind (the same
large-scale-jitter pipeline types and fixed-size batch padding, the same Hungarian matching,
losses, layer-decay optimizer constructor with the host's custom_keys, hooks and evaluator) and
shrinks the sizes: a small ConvNeXt from scratch, 64-channel pixel decoder (1 deformable layer)
and transformer decoder (3 layers, one per feature level), 10 queries, 64-pixel images of the
generated toy COCO set (tools/make_toy_data.py: 4 shape classes), a short schedule. The
backbone's lr multiplier is 1 (the host's 0.1 is for pretrained backbones; this one starts from
scratch), and the gradient clipping is looser (0.01 on a freshly initialised model stalls it).
Total batch 8 (1 process x 8 images).
"""
_base_ = ['../mask2former/mask2former_convnext_t_50e_coco.py']

data_root = 'data/toy/coco/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle', 'star'))
num_classes = 4
width = 64
image_size = (64, 64)

model = dict(
    data_preprocessor=dict(batch_augments=[dict(
        type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
        mask_pad_value=0, pad_seg=False)]),
    backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                  drop_path_rate=0.05, init_cfg=None),
    panoptic_head=dict(
        in_channels=[32, 64, 128, 256],
        feat_channels=width,
        out_channels=width,
        num_things_classes=num_classes,
        num_stuff_classes=0,
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
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_classes, num_stuff_classes=0),
    train_cfg=dict(num_points=1024),
    test_cfg=dict(max_per_image=20))

train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.25), resize_type='Resize',
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
param_scheduler = dict(_delete_=True, type='MultiStepLR', begin=0, end=max_iters,
                       by_epoch=False, milestones=[35], gamma=0.1)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
