"""DeepLabV3+ + ConvNeXt-T (IN-1K), output stride 8, on ADE20K at 512x512, 160k iterations.

The output-stride-16 config (``deeplabv3plus_convnext_t_os16_160k_ade20k.py``; its docstring
says where each value comes from) with stages 2 and 3 dilated (by 2 and 4) instead of
downsampled: features at stride 8, as mmseg's ResNet-50-D8 DeepLabV3+ recipe, whose ASPP rates
(1, 12, 24, 36) it takes. No published result exists.
Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.4, layer
scale init 1.0, official IN-1K weights.
Cost: the two last stages run at 4x and 16x their usual resolution (see docs/model_zoo.md for
the FLOPs); ConvNeXt-B is shipped at output stride 16 only.
"""
_base_ = './deeplabv3plus_convnext_t_os16_160k_ade20k.py'

model = dict(
    backbone=dict(output_stride=8),
    decode_head=dict(dilations=(1, 12, 24, 36)))
