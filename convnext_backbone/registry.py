"""The package's registries: children of mmengine's roots under the scope ``convnext_backbone``.

Being children of the roots, they are reachable from any scope: an mmdet- or mmseg-scoped
config builds ``dict(type='convnext_backbone.ConvNeXt')`` through its own registry, which walks
up to mmengine's root and down into ours. ``locations`` lets the registry import our modules
on first use.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

SCOPE = 'convnext_backbone'

MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE,
                  locations=['convnext_backbone.models'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optim wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
    locations=['convnext_backbone.engine'])
OPTIM_WRAPPERS = Registry('optim wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE,
                          locations=['convnext_backbone.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope=SCOPE,
                 locations=['convnext_backbone.engine'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE,
                      locations=['convnext_backbone.data'])
