"""What the layer-decay tests share: the optimizer, the constructor called directly, the
resulting per-parameter (lr, weight decay) table, and a model of a class no host knows."""
import pytest
import torch.nn as nn

from convnext_backbone import LayerDecayOptimWrapperConstructor

OPTIMIZER = dict(type='AdamW', lr=1e-4, weight_decay=0.05)


def build(model, optimizer=OPTIMIZER, **paramwise_cfg):
    ctor = LayerDecayOptimWrapperConstructor(dict(optimizer=dict(optimizer)), paramwise_cfg)
    return ctor(model).optimizer


def by_name(model, optimizer):
    """name -> (lr, weight_decay), via tensor identity in the optimizer's groups."""
    table = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in table, 'a parameter is in two groups'
            table[id(p)] = (group['lr'], group['weight_decay'])
    names = {id(p): n for n, p in model.named_parameters()}
    assert set(table) <= set(names)
    return {names[i]: v for i, v in table.items()}


def assert_table(got, expected):
    wrong = {n: (got[n], v) for n, v in expected.items() if got[n] != pytest.approx(v, rel=1e-12)}
    assert not wrong


class Toy(nn.Module):
    """A model of another class: a backbone and a head, nothing mmdet/mmseg-specific."""

    def __init__(self, backbone, out_channels):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Conv2d(out_channels, 4, 1)
