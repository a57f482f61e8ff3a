"""Training-engine components a config names: the layer-wise learning-rate decay optimizer
constructor, the reliability hooks (crash-safe checkpoints, stop on a non-finite loss,
bit-exact resume of random states), and bf16 autocast on a machine without a GPU."""
from .checkpoint_hook import CrashSafeCheckpointHook
from .cpu_autocast import CPUAutocastError, CPUAutocastOptimWrapper, cpu_supports_bf16
from .hooks import NonFiniteLossError, NonFiniteLossHook, RNGStateHook
from .layer_decay import LayerDecayConfigError, LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor', 'LayerDecayConfigError', 'CrashSafeCheckpointHook',
           'NonFiniteLossHook', 'NonFiniteLossError', 'RNGStateHook', 'CPUAutocastOptimWrapper',
           'CPUAutocastError', 'cpu_supports_bf16']
