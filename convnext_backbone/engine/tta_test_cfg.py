"""Test-time augmentation with inference settings of its own.

A config's ``model.test_cfg`` serves its single-scale test. ``tools/test.py --tta`` (ours and
mmseg's) wraps that model, ``test_cfg`` included, in the config's ``tta_model``. The ConvNeXt
paper tests ADE20K two ways: single scale with sliding 512x512 (640x640) windows, and multi-scale
+ flip on the whole image at every scale (its ``*_ms.py`` configs keep the base's
``test_cfg=dict(mode='whole')``). ``TTAWithTestCfg`` gives the wrapped model the ``test_cfg`` the
augmented test uses, so one config holds both:

    tta_model = dict(type='convnext_backbone.TTAWithTestCfg',
                     tta=dict(type='mmseg.SegTTAModel'), test_cfg=dict(mode='whole'))

The wrapped model's ``test_cfg`` is replaced, not merged: the augmented test runs with exactly
the settings named here.
"""
import copy
from collections.abc import Mapping

from mmengine.config import ConfigDict
from mmengine.registry import MODELS as ROOT_MODELS

from ..registry import MODELS


@MODELS.register_module(name='TTAWithTestCfg')
def build_tta_with_test_cfg(module, tta, test_cfg, **tta_args):
    """Build ``tta`` (a TTA model config, e.g. ``dict(type='mmseg.SegTTAModel')``) around
    ``module`` (the model config or a built model) whose ``test_cfg`` becomes ``test_cfg``."""
    if not isinstance(tta, Mapping) or 'type' not in tta:
        raise TypeError(f"TTAWithTestCfg: tta must be a TTA model config with a type, e.g. "
                        f"dict(type='mmseg.SegTTAModel'), got {tta!r}")
    if not isinstance(test_cfg, Mapping):
        raise TypeError(f"TTAWithTestCfg: test_cfg must be a dict of the wrapped model's test "
                        f"settings, e.g. dict(mode='whole'), got {test_cfg!r}")
    if 'module' in tta:
        raise TypeError('TTAWithTestCfg: tta must not hold a module (the tools pass the '
                        'config\'s model as module): remove tta.module')
    if isinstance(module, Mapping):
        module = copy.deepcopy(module)
        module['test_cfg'] = copy.deepcopy(dict(test_cfg))
    elif hasattr(module, 'test_cfg'):
        module.test_cfg = ConfigDict(copy.deepcopy(dict(test_cfg)))
    else:
        raise TypeError(f'TTAWithTestCfg: module must be a model config (dict) or a model with '
                        f'a test_cfg attribute, got {type(module).__name__}')
    return ROOT_MODELS.build(dict(copy.deepcopy(dict(tta)), module=module, **tta_args))
