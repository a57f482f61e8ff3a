"""DeepLabV3+ + ConvNeXt-B (IN-1K), output stride 16, on ADE20K at 512x512, 160k iterations.

The ConvNeXt-T output-stride-16 config (``deeplabv3plus_convnext_t_os16_160k_ade20k.py``; its
docstring says where each value comes from) with ConvNeXt-B: channels 128/256/512/1024 wired
into the heads, drop path 0.4 as the paper's UperNet B. No published result exists.
Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: ``output_stride=16``,
drop path 0.4, layer scale init 1.0, official IN-1K weights.
"""
_base_ = './deeplabv3plus_convnext_t_os16_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v1-base', drop_path_rate=0.4, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224.pth')),
    decode_head=dict(in_channels=1024, c1_in_channels=128),
    auxiliary_head=dict(in_channels=512))
