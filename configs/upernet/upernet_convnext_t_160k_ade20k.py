"""UperNet + ConvNeXt-T (IN-1K) on ADE20K at 512x512, the ConvNeXt paper's 160k recipe.

Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.4, layer
scale init 1.0, official IN-1K weights. Heads: UPerHead + auxiliary FCNHead on stage 2 (loss 0.4).
Test: single scale (resize to 2048x512, sliding 512x512 windows, stride 341);
multi-scale + flip with ``tools/test.py ... --tta``: the whole image at every scale (as the
official ``*_ms.py`` configs test), not windows.
Paper: 60M params, 939G FLOPs at 2048x512, 46.0 mIoU single-scale (46.7 multi-scale + flip).
"""
_base_ = [
    '../_base_/models/upernet_convnext.py',
    '../_base_/datasets/ade20k_512x512.py',
    '../_base_/schedules/seg_adamw_160k.py',
    '../_base_/runtime/seg_runtime.py',
]

# The bases are this recipe as they stand (ConvNeXt-T, 512x512, lr 1e-4, decay 0.9).

# Multi-scale + flip (`tools/test.py --tta`, ours or mmseg's) as the official *_ms.py configs test:
# the whole image at every scale (their model base's test_cfg=dict(mode='whole')); the
# single-scale test above slides windows. docs/evaluation.md.
tta_model = dict(_delete_=True, type='convnext_backbone.TTAWithTestCfg',
                 tta=dict(type='mmseg.SegTTAModel'), test_cfg=dict(mode='whole'))
