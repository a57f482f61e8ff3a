"""Config values of our components, checked from the schemas they declare (config_schema,
cli/config_values.py): every shipped config passes; the values users write in other valid
spellings pass; each mistake is one line naming the key and the fix, and the component itself
refuses the value the checker refuses (they read one schema or agree on the range)."""
import copy

import pytest
import torch
from mmengine.config import Config

from convnext_backbone.cli import config as cli_config
from convnext_backbone.cli.config_values import (
    ConfigValueError,
    check_config_values,
    component_schemas,
)
from convnext_backbone.engine import LayerDecayOptimWrapperConstructor
from convnext_backbone.models import ConvNeXt

from conftest import REPO, one_per_family_fast, shipped_configs

TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')


@pytest.mark.parametrize('path', one_per_family_fast(shipped_configs()))
def test_shipped_configs_pass(path):
    check_config_values(cli_config.load_config(str(REPO / path)))


def test_every_component_of_ours_with_settings_declares_them():
    assert {'ConvNeXt', 'LayerDecayOptimWrapperConstructor', 'CrashSafeCheckpointHook',
            'NonFiniteLossHook', 'CPUAutocastOptimWrapper'} <= set(component_schemas())


@pytest.fixture(scope='module')
def toy():
    return cli_config.load_config(TOY_DET)


VALID = {  # other spellings the components take
    'optim_wrapper.optimizer.lr': 1,  # an int
    'optim_wrapper.optimizer.betas': [0.9, 0.99],  # a list
    'optim_wrapper.optimizer.weight_decay': 0,
    'optim_wrapper.paramwise_cfg.decay_rate': 1,
    'model.backbone.out_indices': -1,  # an int, negative
    'model.backbone.layer_scale_init_value': None,
    'model.backbone.frozen_stages': 4,  # every stage of the toy's 4
    'model.backbone.output_stride': 16,
    'default_hooks.checkpoint.interval': -1,
}


@pytest.mark.parametrize('key', list(VALID))
def test_valid_spellings_pass(toy, key):
    cfg = copy.deepcopy(toy)
    cfg.merge_from_dict({key: VALID[key]})
    check_config_values(cfg)


MISTAKES = {  # key -> (value, what the line says)
    'optim_wrapper.optimizer.lr': ('abc', 'must be a number > 0'),
    'optim_wrapper.optimizer.weight_decay': (-0.05, 'must be a number >= 0'),
    'optim_wrapper.optimizer.betas': ((0.9, 1.5), '2 values, each a number in [0, 1)'),
    'optim_wrapper.paramwise_cfg.decay_rate': (1.5, 'a number in (0, 1]'),
    'optim_wrapper.paramwise_cfg.decay_type': ('layerwise', "one of 'layer_wise', 'stage_wise'"),
    'optim_wrapper.paramwise_cfg.num_layers': (0, 'an int >= 1'),
    'model.backbone.arch': ('tiny', "write 'v1-tiny' or 'v2-tiny'"),
    'model.backbone.drop_path_rate': (1.0, 'a number in [0, 1)'),
    'model.backbone.layer_scale_init_value': ('1e-6x', 'a number >= 0 or None'),
    'model.backbone.out_indices': ((0, 4), 'out of range'),
    'model.backbone.frozen_stages': (5, 'an int in [-1, 4] for this 4-stage arch'),
    'model.backbone.output_stride': (4, 'one of [8, 16, 32]'),
    'default_hooks.checkpoint.max_keep_ckpts': ('1', 'must be an int'),
    'custom_hooks.0.action': ('stop', "one of 'raise', 'warn'"),
}


@pytest.mark.parametrize('key', list(MISTAKES))
def test_a_wrong_value_is_one_line_naming_key_and_fix(toy, key):
    value, says = MISTAKES[key]
    cfg = copy.deepcopy(toy)
    cfg.merge_from_dict({key: value})
    with pytest.raises(ConfigValueError) as caught:
        check_config_values(cfg)
    message = str(caught.value)
    assert message.startswith(f'{key} = {value!r}: ') and says in message, message
    assert f'Fix: --cfg-options {key}=' in message and '\n' not in message


@pytest.mark.parametrize('backbone', [dict(drop_path_rate=1.0), dict(frozen_stages=5),
                                      dict(out_indices=(0, 4)), dict(arch='tiny'),
                                      dict(output_stride=4)])
def test_the_backbone_refuses_what_the_checker_refuses(backbone):
    arch = dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256])
    settings = {'type': 'convnext_backbone.ConvNeXt', 'arch': arch, **backbone}
    cfg = Config(dict(model=dict(backbone=settings)))
    with pytest.raises(ConfigValueError):
        check_config_values(cfg)
    with pytest.raises(ValueError):
        ConvNeXt(**{'arch': arch, **backbone})


def test_the_constructor_checks_with_the_same_schema():
    for key, (value, says) in MISTAKES.items():
        if not key.startswith('optim_wrapper.') or key.endswith('betas'):
            continue  # betas: torch's optimizer reads them
        section, name = key.split('.')[1:]
        optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.05)
        paramwise = dict(decay_rate=0.9)
        (optimizer if section == 'optimizer' else paramwise)[name] = value
        with pytest.raises(ValueError, match=f'{key} = '):
            LayerDecayOptimWrapperConstructor(dict(optimizer=optimizer), paramwise)
    assert torch.optim.AdamW  # the optimizer the toys use
