"""ADE20K at 640x640 crops for UperNet on IN-22K backbones (mmseg 1.x).

mmseg's own ``ade20k_640x640.py`` (train: random resize of 2560x640 by 0.5-2.0, 640x640 crop,
flip, photometric distortion; test: resize to 2560x640). Batch: 2 images per GPU (8 GPUs = 16).
Multi-scale + flip test (``--tta``): 2560x640 times 0.5 ... 1.75, each also flipped.
"""
_base_ = ['mmseg::_base_/datasets/ade20k_640x640.py']

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = dict(batch_size=1)

tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(2560 * r), int(640 * r)), keep_ratio=True)
         for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')],
    ]),
]
