"""Mask2Former + ConvNeXt-B (IN-1K): COCO panoptic segmentation.

Hyper-parameters: mmdet's Swin Mask2Former recipe, the backbone swapped. Schedule: 50 epochs as
368,750 iterations (x0.1 at 327,778 and 355,092), no warm-up; large-scale jitter (0.1-2.0) of
1024x1024 crops; test at 1333x800.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the host. Optimizer: AdamW lr
1e-4, wd 0.05, gradient clipping 0.01, backbone lr x0.1 and no weight decay on the query/level
embeddings and norms (the host's), layer-wise lr decay 0.9 inside the backbone (ours); see
configs/_base_/models/mask2former_convnext_coco_panoptic.py. Backbone: drop path 0.7 (the ConvNeXt
paper's Cascade Mask R-CNN value for B), layer scale init 1.0, official IN-1K weights. Metric: PQ
(CocoPanopticMetric) and box/mask AP. No published result exists for ConvNeXt with this head in
mmdet/mmseg; docs/model_zoo.md gives the measured params and FLOPs.
"""
_base_ = './mask2former_convnext_t_50e_coco_panoptic.py'

model = dict(
    backbone=dict(arch='v1-base', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224.pth')),
    panoptic_head=dict(in_channels=[128, 256, 512, 1024]))
