"""mmseg's default runtime with this project's training hooks, as runtime/det_runtime.py. (mmseg
keeps its default_hooks in the schedule, so CrashSafeCheckpointHook is named in
schedules/seg_adamw_160k.py.)"""
_base_ = ['mmseg::_base_/default_runtime.py']

custom_hooks = [dict(type='convnext_backbone.NonFiniteLossHook'),
                dict(type='convnext_backbone.RNGStateHook')]
