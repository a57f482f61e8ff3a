"""The ConvNeXt paper's 3x detection schedule: 36 epochs, AdamW, layer-wise lr decay, fp16.

AdamW (betas 0.9/0.999) lr 1e-4, weight decay 0.05 (none on biases, norms, layer scale, GRN),
layer-wise lr decay 0.95 through ``convnext_backbone.LayerDecayOptimWrapperConstructor`` (the
backbone tells it each parameter's layer; necks and heads get the full lr); linear warm-up over
the first 1000 iterations from 0.001x, then x0.1 at epochs 27 and 33. Mixed precision with
dynamic loss scaling (``AmpOptimWrapper``, which needs a GPU). Written for a total batch of 16
(8 GPUs x 2 images); ``auto_scale_lr`` (off by default) knows that base batch size.
Size configs override ``optimizer.lr`` and ``paramwise_cfg.decay_rate``.
"""
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise'))

auto_scale_lr = dict(enable=False, base_batch_size=16)
