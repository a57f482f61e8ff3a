"""DeepLabV3+ + ConvNeXt-T (IN-1K), output stride 16, on ADE20K at 512x512, 160k iterations.

No published recipe or result exists for this pair: the head, data and schedule length are
mmseg's DeepLabV3+ ResNet-50 ADE20K recipe (``deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512``:
DepthwiseSeparableASPPHead, auxiliary FCNHead on the second-to-last output with loss 0.4,
mmseg's ADE20K pipeline, 512x512 crops, 160k iterations, batch 16, whole-image test), its
output stride 16 version as mmseg's ``-d16`` configs (ASPP rates 1, 6, 12, 18); the optimizer is
the ConvNeXt paper's ADE20K recipe (its UperNet configs), because the ResNet recipe's SGD
(lr 0.01, wd 5e-4) is not how ConvNeXt fine-tunes.
Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images; mmseg's recipe runs 4 x 4); fp16 (AmpOptimWrapper,
dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9 (heads at the full lr). Backbone:
``output_stride=16`` (stage 3 dilated by 2), drop path 0.4, layer scale init 1.0, official IN-1K
weights (they load unchanged: dilation adds no parameters).
Test: single scale, resize to 2048x512, whole image; multi-scale + flip with
``tools/test.py ... --tta``.
"""
_base_ = [
    '../_base_/models/deeplabv3plus_convnext.py',
    '../_base_/datasets/ade20k_512x512.py',
    '../_base_/schedules/seg_adamw_160k.py',
    '../_base_/runtime/seg_runtime.py',
]

# The bases are this recipe as they stand (ConvNeXt-T, output stride 16, 512x512, lr 1e-4).
