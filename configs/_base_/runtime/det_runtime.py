"""mmdet's default runtime with this project's reliability hooks, named (not patched in):
crash-safe checkpoints (atomic saves, resume from the newest complete one), a stop on a NaN/inf
loss, and a bit-exact --resume (RNG states in checkpoints). See docs/reliability.md."""
_base_ = ['mmdet::_base_/default_runtime.py']

default_hooks = dict(checkpoint=dict(type='convnext_backbone.CrashSafeCheckpointHook'))
custom_hooks = [dict(type='convnext_backbone.NonFiniteLossHook'),
                dict(type='convnext_backbone.RNGStateHook')]
