"""A 1x (12-epoch) detection schedule with the ConvNeXt optimizer settings.

Not in the ConvNeXt paper (which reports 3x only): the optimizer of the 3x recipe
(``det_adamw_3x.py``: AdamW lr 1e-4, wd 0.05, layer-wise decay 0.95, fp16) on mmdet's 1x
schedule (12 epochs, x0.1 at epochs 8 and 11) with the same 1000-iteration linear warm-up.
Total batch 16 (8 GPUs x 2 images).
"""
_base_ = ['./det_adamw_3x.py']

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1),
]
