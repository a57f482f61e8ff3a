"""Training-engine components a config names: the layer-wise learning-rate decay optimizer
constructor, the reliability hooks (crash-safe checkpoints, stop on a non-finite loss,
bit-exact resume of random states), bf16 autocast on a machine without a GPU, and test-time
augmentation with inference settings of its own."""
from .checkpoint_hook import CrashSafeCheckpointHook
from .cpu_autocast import CPUAutocastError, CPUAutocastOptimWrapper, cpu_supports_bf16
from .hooks import NonFiniteLossError, NonFiniteLossHook, RNGStateHook
from .layer_decay import LayerDecayConfigError, LayerDecayOptimWrapperConstructor
from .tta_test_cfg import build_tta_with_test_cfg

__all__ = ['LayerDecayOptimWrapperConstructor', 'LayerDecayConfigError', 'CrashSafeCheckpointHook',
           'NonFiniteLossHook', 'NonFiniteLossError', 'RNGStateHook', 'CPUAutocastOptimWrapper',
           'CPUAutocastError', 'cpu_supports_bf16', 'build_tta_with_test_cfg']
