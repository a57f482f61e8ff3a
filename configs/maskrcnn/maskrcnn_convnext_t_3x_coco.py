"""Mask R-CNN + ConvNeXt-T (IN-1K) on COCO, the ConvNeXt paper's 3x multi-scale recipe.

Schedule: 36 epochs (3x), lr x0.1 at epochs 27 and 33, 1000-iteration linear warm-up.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, layer-wise lr decay 0.95 (8 layer ids: the stem trains at
1e-4 * 0.95**7). Backbone: drop path 0.4, layer scale init 1.0, official IN-1K weights.
Data: DETR-style multi-scale 480-800 training with random crop; single-scale 1333x800 test.
Paper: 48M params, 262G FLOPs at 1280x800, 46.2 box AP / 41.7 mask AP.

    python tools/train.py configs/maskrcnn_convnext_t_coco.py          # ours
    python MMDET/tools/train.py configs/maskrcnn_convnext_t_coco.py    # mmdet's own, unchanged
    (MMDET: an mmdetection clone, or site-packages/mmdet/.mim in the installed wheel)
"""
_base_ = [
    '../_base_/models/maskrcnn_convnext_fpn.py',
    '../_base_/datasets/coco_instance_ms_crop.py',
    '../_base_/schedules/det_adamw_3x.py',
    '../_base_/runtime/det_runtime.py',
]

# custom_imports (which lets mmdet's own tools find convnext_backbone) comes with the model base.
# The recipe's values, stated here although the bases already hold them, so this file reads alone:
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

optim_wrapper = dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise'))
