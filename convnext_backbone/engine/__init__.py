"""Training-engine pieces: the layer-wise learning-rate decay optimizer constructor."""
from .layer_decay import LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor']
