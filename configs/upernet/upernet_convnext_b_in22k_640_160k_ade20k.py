"""UperNet + ConvNeXt-B (IN-22K) on ADE20K at 640x640, the ConvNeXt paper's 160k recipe.

Schedule: 160k iterations, 1500-iteration linear warm-up, then poly decay (power 1) to 0.
Total batch size: 16 (8 GPUs x 2 images); fp16 (AmpOptimWrapper, dynamic loss scale).
Optimizer: AdamW lr 1e-4, wd 0.05, stage-wise lr decay 0.9. Backbone: drop path 0.4, layer
scale init 1.0, official IN-22K weights. Heads: UPerHead + auxiliary FCNHead on stage 2 (loss 0.4).
Test: single scale (resize to 2560x640, sliding 640x640 windows, stride 426);
multi-scale + flip with ``tools/test.py ... --tta``: the whole image at every scale (as the
official ``*_ms.py`` configs test), not windows.
Paper: 122M params, 1828G FLOPs at 2560x640, 52.6 mIoU single-scale (53.1 multi-scale + flip).
"""
_base_ = [
    '../_base_/models/upernet_convnext.py',
    '../_base_/datasets/ade20k_640x640.py',
    '../_base_/schedules/seg_adamw_160k.py',
    '../_base_/runtime/seg_runtime.py',
]

crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='v1-base', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512),
    test_cfg=dict(crop_size=crop_size, stride=(426, 426)))

# Multi-scale + flip (`tools/test.py --tta`, ours or mmseg's) as the official *_ms.py configs test:
# the whole image at every scale (their model base's test_cfg=dict(mode='whole')); the
# single-scale test above slides windows. docs/evaluation.md.
tta_model = dict(_delete_=True, type='convnext_backbone.TTAWithTestCfg',
                 tta=dict(type='mmseg.SegTTAModel'), test_cfg=dict(mode='whole'))
