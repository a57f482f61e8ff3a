"""The ConvNeXt paper's UperNet schedule: 160k iterations, AdamW, stage-wise lr decay, fp16.

AdamW (betas 0.9/0.999) lr 1e-4, weight decay 0.05 (none on biases, norms, layer scale, GRN),
stage-wise lr decay 0.9 through ``convnext_backbone.LayerDecayOptimWrapperConstructor``
(downsample layers share the lowest rate, each stage its own; heads get the full lr); linear
warm-up over 1500 iterations from 1e-6x, then poly decay (power 1) to 0 at 160k. Mixed precision
with dynamic loss scaling. Written for a total batch of 16 (8 GPUs x 2 images).
Validation and checkpoints every 16k iterations (mmseg's 160k schedule), written by
``convnext_backbone.CrashSafeCheckpointHook`` (atomic saves; see configs/_base_/runtime/).
"""
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']

optimizer = None  # the base's SGD settings; unused, the optimizer is optim_wrapper.optimizer

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
]

default_hooks = dict(checkpoint=dict(type='convnext_backbone.CrashSafeCheckpointHook'))
