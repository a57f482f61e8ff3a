"""Mask2Former + ConvNeXt-S (IN-1K): ADE20K semantic segmentation.

Hyper-parameters: mmseg's Swin Mask2Former recipe, the backbone swapped. Schedule: 160k iterations,
poly decay (power 0.9) to 0, no warm-up; 512x512 crops; whole-image test at 2048x512.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the host. Optimizer: AdamW lr
1e-4, wd 0.05, gradient clipping 0.01, backbone lr x0.1 and no weight decay on the query/level
embeddings and norms (the host's), stage-wise lr decay 0.9 inside the backbone (ours); see
configs/_base_/models/mask2former_convnext_ade20k.py. Backbone: drop path 0.3 (the ConvNeXt paper's
UperNet value for S), layer scale init 1.0, official IN-1K weights. Metric: mIoU (single scale). No
published result exists for ConvNeXt with this head in mmdet/mmseg; docs/model_zoo.md gives the
measured params and FLOPs.
"""
_base_ = './mask2former_convnext_t_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v1-small', drop_path_rate=0.3, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224.pth')))
