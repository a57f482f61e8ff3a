"""ConvNeXt (V1 and V2) for mmdet 3.x and mmsegmentation 1.x.

Importing the package registers the backbone, the layer-decay optimizer constructor, the
reliability hooks and the checked image loader in the ``convnext_backbone`` scope, and applies
only the fixes the 2023-era stack needs to run on today's torch/setuptools, each where the
installed versions have the problem (``compat``: listed, revertible,
``CONVNEXT_BACKBONE_NO_FIXES`` switches them off).
"""
from . import compat  # noqa: F401  (applies the needed host fixes on import)
from .data import CheckedLoadImageFromFile  # noqa: E402
from .engine import (  # noqa: E402
                     CrashSafeCheckpointHook,
                     LayerDecayOptimWrapperConstructor,
                     NonFiniteLossHook,
                     RNGStateHook,
)
from .models import ConvNeXt  # noqa: E402
from .registry import HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS
from .version import __version__

__all__ = ['__version__', 'MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'HOOKS', 'TRANSFORMS',
           'ConvNeXt', 'LayerDecayOptimWrapperConstructor', 'CrashSafeCheckpointHook',
           'NonFiniteLossHook', 'RNGStateHook', 'CheckedLoadImageFromFile']
