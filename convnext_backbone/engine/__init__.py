"""Training-engine pieces: the layer-wise learning-rate decay optimizer constructor, and the
reliability hooks (stop on a non-finite loss, bit-exact resume of random states)."""
from .hooks import NonFiniteLossError, NonFiniteLossHook, RNGStateHook
from .layer_decay import LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor', 'NonFiniteLossHook', 'NonFiniteLossError',
           'RNGStateHook']
