"""ADE20K at 512x512 crops for UperNet (mmseg 1.x).

mmseg's own ``ade20k.py`` (data in ``data/ade/ADEChallengeData2016``; train: random resize of
2048x512 by 0.5-2.0, 512x512 crop, flip, photometric distortion; test: resize to 2048x512).
Batch: 2 images per GPU (the recipes use 8 GPUs = 16 in total).
Multi-scale + flip test (``tools/test.py --tta``): the official ConvNeXt ``_ms`` setting, scales
2048x512 times 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, each also flipped, through mmseg's SegTTAModel.
"""
_base_ = ['mmseg::_base_/datasets/ade20k.py']

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = dict(batch_size=1)

tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True)
         for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')],
    ]),
]
