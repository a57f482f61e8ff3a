"""``ConvNeXt.get_layer_depth`` / ``num_layers``: the official layer-decay ids, in both schemes.

Hand-written tables for ConvNeXt-T and -B, and every parameter of several archs against the
official detection code's rule (written out here for 4 stages, as it is there). Models are built on
the 'meta' device: nothing is allocated.
"""
import math

import pytest
import torch

from convnext_backbone.models import ConvNeXt


def _meta(arch):
    with torch.device('meta'):
        return ConvNeXt(arch=arch)


LAYER_WISE = {
    'v1-tiny': (6, {
        'downsample_layers.0.0.weight': 0, 'downsample_layers.0.1.bias': 0,
        'stages.0.0.dwconv.weight': 1, 'stages.0.2.gamma': 1,
        'downsample_layers.1.0.weight': 2, 'stages.1.1.pwconv1.weight': 2,
        'downsample_layers.2.1.weight': 3, 'stages.2.0.norm.weight': 3,
        'stages.2.2.pwconv2.bias': 3, 'stages.2.3.dwconv.weight': 4, 'stages.2.5.gamma': 4,
        'stages.2.6.dwconv.bias': 5, 'stages.2.8.pwconv1.weight': 5,
        'downsample_layers.3.0.weight': 6, 'downsample_layers.3.1.bias': 6,
        'stages.3.2.gamma': 6, 'norm0.weight': 7, 'norm3.bias': 7, 'some.other.weight': 7,
        'backbone.stages.2.4.dwconv.weight': 4}),
    'v1-base': (12, {
        'downsample_layers.0.0.weight': 0, 'stages.0.2.pwconv2.weight': 1,
        'downsample_layers.1.1.weight': 2, 'stages.1.0.gamma': 2,
        'downsample_layers.2.0.bias': 3, 'stages.2.0.dwconv.weight': 3,
        'stages.2.14.norm.bias': 7, 'stages.2.15.norm.bias': 8, 'stages.2.23.gamma': 10,
        'stages.2.24.pwconv1.bias': 11,
        'stages.2.26.gamma': 11, 'downsample_layers.3.1.weight': 12,
        'stages.3.0.dwconv.weight': 12, 'norm2.weight': 13}),
}
STAGE_WISE = {
    'v1-tiny': {
        'downsample_layers.0.0.weight': 0, 'downsample_layers.3.1.weight': 0,
        'stages.0.0.gamma': 1, 'stages.1.2.dwconv.weight': 2, 'stages.2.8.gamma': 3,
        'stages.3.0.pwconv1.weight': 4, 'norm1.weight': 7, 'some.other.weight': 7},
    'v1-base': {
        'downsample_layers.2.0.weight': 0, 'stages.2.26.gamma': 3, 'stages.3.2.gamma': 4,
        'norm3.bias': 13},
}


@pytest.mark.parametrize('arch', ['v1-tiny', 'v1-base'])
def test_get_layer_depth_tables(arch):
    model = _meta(arch)
    num_layers, table = LAYER_WISE[arch]
    assert model.num_layers == num_layers
    for name, layer_id in table.items():
        assert model.get_layer_depth(name) == (layer_id, num_layers + 2), name
    for name, layer_id in STAGE_WISE[arch].items():
        assert model.get_layer_depth(name, 'stage_wise') == (layer_id, num_layers + 2), name


def _official_layer_wise(name, num_max_layer):
    """The official ConvNeXt detection code's rule, written for 4 stages as it is there."""
    parts = name.split('.')
    if name.startswith('downsample_layers'):
        return {0: 0, 1: 2, 2: 3, 3: num_max_layer}[int(parts[1])]
    if name.startswith('stages'):
        stage, block = int(parts[1]), int(parts[2])
        return {0: 1, 1: 2, 2: 3 + block // 3, 3: num_max_layer}[stage]
    return num_max_layer + 1


@pytest.mark.parametrize('arch', ['v1-tiny', 'v1-base', 'v2-atto', 'v2-nano'])
def test_get_layer_depth_matches_official_rule_for_every_parameter(arch):
    model = _meta(arch)
    assert model.num_layers == 3 + math.ceil(model.arch_spec.depths[2] / 3)
    for name, _ in model.named_parameters():
        assert model.get_layer_depth(name) == (_official_layer_wise(name, model.num_layers),
                                               model.num_layers + 2), name


def test_get_layer_depth_bad_decay_type():
    with pytest.raises(ValueError, match=r"decay_type must be one of \['layer_wise', "
                                         r"'stage_wise'\], got 'layerwise'"):
        _meta('v2-atto').get_layer_depth('stages.0.0.gamma', 'layerwise')
