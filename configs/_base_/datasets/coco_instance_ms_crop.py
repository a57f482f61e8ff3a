"""COCO instance segmentation with the ConvNeXt paper's 3x training augmentation.

mmdet's own ``coco_instance.py`` (data in ``data/coco/``, single-scale 1333x800 test) with the
DETR-style multi-scale training pipeline: random flip, then with equal probability either
(a) resize the shorter side to one of 480, 512, ..., 800 (max 1333), or (b) resize to one of
400/500/600, take a random 384-600 crop, and resize to one of 480..800. Batch: 2 images per GPU
(the recipes use 8 GPUs = 16 in total). Training images load through
``convnext_backbone.CheckedLoadImageFromFile`` (mmcv's loader; an image that does not decode
stops the run naming the file instead of a cv2 traceback hours in).
"""
_base_ = ['mmdet::_base_/datasets/coco_instance.py']

ms_scales = [(short, 1333) for short in range(480, 801, 32)]  # 480, 512, ..., 800

train_pipeline = [
    dict(type='convnext_backbone.CheckedLoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)],
    ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
