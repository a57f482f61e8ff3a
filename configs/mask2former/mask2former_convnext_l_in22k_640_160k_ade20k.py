"""Mask2Former + ConvNeXt-L (IN-22K): ADE20K semantic segmentation.

Hyper-parameters: mmseg's Swin Mask2Former recipe, the backbone swapped. Schedule: 160k iterations,
poly decay (power 0.9) to 0, no warm-up; 640x640 crops (as the host for IN-22K Swin-B/L);
whole-image test at 2560x640.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the host. Optimizer: AdamW lr
1e-4, wd 0.05, gradient clipping 0.01, backbone lr x0.1 and no weight decay on the query/level
embeddings and norms (the host's), stage-wise lr decay 0.9 inside the backbone (ours); see
configs/_base_/models/mask2former_convnext_ade20k.py. Backbone: drop path 0.4 (the ConvNeXt paper's
UperNet value for L), layer scale init 1.0, official IN-22K weights. Metric: mIoU (single scale).
No published result exists for ConvNeXt with this head in mmdet/mmseg; docs/model_zoo.md gives the
measured params and FLOPs.
"""
_base_ = './mask2former_convnext_t_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v1-large', drop_path_rate=0.4, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth')),
    data_preprocessor=dict(size=(640, 640)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))

# 640x640 crops, as mmseg's IN-22K Swin-B/L Mask2Former configs.
crop_size = (640, 640)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[64 * x for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2560),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
