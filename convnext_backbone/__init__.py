"""ConvNeXt (V1 and V2) for mmdet 3.x and mmsegmentation 1.x.

Importing the package applies the torch-2.13 compatibility fixes (``compat``) and registers the
backbone and the layer-decay optimizer constructor in the ``convnext_backbone`` scope.
"""
from .version import __version__
from . import compat  # noqa: F401  (applies the stack fixes on import)
from .registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from .models import ConvNeXt  # noqa: E402
from .engine import LayerDecayOptimWrapperConstructor  # noqa: E402

__all__ = ['__version__', 'MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'ConvNeXt',
           'LayerDecayOptimWrapperConstructor']
