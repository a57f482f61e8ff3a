"""Mask R-CNN + ConvNeXt-T (IN-1K) on COCO, 1x single-scale (a shorter variant of the flagship).

Schedule: 12 epochs (1x), lr x0.1 at epochs 8 and 11, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Data: mmdet's standard single-scale 1333x800 training (flip only) and test.
Everything else is the 3x recipe of ``maskrcnn_convnext_t_coco.py`` (AdamW lr 1e-4, wd 0.05,
layer-wise decay 0.95, drop path 0.4, layer scale 1.0). The paper reports no 1x result; these
are our settings, chosen so that only the schedule and augmentation differ from the 3x config.
"""
_base_ = [
    './_base_/models/maskrcnn_convnext_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedules/det_adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
]

custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='convnext_backbone.ConvNeXt',
        arch='v1-tiny',
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
