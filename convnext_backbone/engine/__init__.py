"""Training-engine components a config names: the layer-wise learning-rate decay optimizer
constructor, and the reliability hooks (crash-safe checkpoints, stop on a non-finite loss,
bit-exact resume of random states)."""
from .checkpoint_hook import CrashSafeCheckpointHook
from .hooks import NonFiniteLossError, NonFiniteLossHook, RNGStateHook
from .layer_decay import LayerDecayConfigError, LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor', 'LayerDecayConfigError', 'CrashSafeCheckpointHook',
           'NonFiniteLossHook', 'NonFiniteLossError', 'RNGStateHook']
