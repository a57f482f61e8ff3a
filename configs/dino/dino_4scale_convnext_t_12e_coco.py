"""DINO (4 scales) + ConvNeXt-T (IN-1K): COCO detection.

Hyper-parameters: mmdet's ``dino-4scale_r50_8xb2-12e_coco.py``, the backbone swapped; stages
1-3 (strides 8-32, 192/384/768 channels) feed the ChannelMapper, which adds the 4th level.
Schedule: 12 epochs, x0.1 at epoch 11, no warm-up; DETR-style multi-scale 480-800 training with
random crop, 1333x800 test.
Total batch size: 16 (8 GPUs x 2 images); fp32 (OptimWrapper), as the host. Optimizer: AdamW lr
1e-4, wd 1e-4, gradient clipping 0.1, backbone lr x0.1 (the host's), layer-wise lr decay 0.9
inside the backbone (ours); see configs/_base_/models/dino_4scale_convnext_coco.py. Backbone:
drop path 0.4 (the ConvNeXt paper's detection value for T), layer scale init 1.0, official IN-1K
weights. Metric: box AP. No published result exists for ConvNeXt with this head in mmdet;
docs/model_zoo.md gives the measured params and FLOPs.
"""
_base_ = ['../_base_/models/dino_4scale_convnext_coco.py']
