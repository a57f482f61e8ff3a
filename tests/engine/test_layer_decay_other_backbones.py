"""Layer-wise lr decay for backbones that are not ours: any module with a ``get_layer_depth``
(multi-dimensional GRN / layer-scale parameters), mmpretrain's backbones under mmpretrain's own
convention (equal to mmpretrain's constructor), and backbones whose ``get_layer_depth`` makes
decay impossible (one id for everything, an unknown signature): errors, not silent no-ops."""
import pytest
import torch
import torch.nn as nn
from layer_decay_cases import OPTIMIZER, Toy, assert_table, build, by_name
from mmengine.registry import DefaultScope


class GRNLike(nn.Module):
    """GRN with the official (1, 1, 1, C) parameter shape."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, c))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, c))


class StubBackbone(nn.Module):
    """Not a ConvNeXt by name: only ``get_layer_depth`` makes it usable (ids: stem 0, block 1)."""
    num_layers = 1

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, 2)
        self.block = nn.ModuleDict(dict(pw=nn.Linear(8, 8), grn=GRNLike(8)))
        self.block.gamma = nn.Parameter(torch.ones(8, 1, 1))  # layer scale, 3-D on purpose

    def get_layer_depth(self, name, decay_type='layer_wise'):
        return (0 if name.startswith('stem') else 1), 3


def test_stub_backbone_multi_dim_gamma_beta_and_generic_ids():
    model = Toy(StubBackbone(), 8)
    got = by_name(model, build(model, decay_rate=0.5, num_layers=1))
    assert_table(got, {  # 3 ids: lr = 1e-4 * 0.5 ** (2 - id)
        'backbone.stem.weight': (2.5e-05, 0.05),
        'backbone.block.pw.weight': (5e-05, 0.05),
        'backbone.block.pw.bias': (5e-05, 0.0),
        'backbone.block.grn.gamma': (5e-05, 0.0),  # shaped (1, 1, 1, C)
        'backbone.block.grn.beta': (5e-05, 0.0),
        'backbone.block.gamma': (5e-05, 0.0),  # shaped (C, 1, 1)
        'head.weight': (1e-4, 0.05),
    })


# mmpretrain's convention: get_layer_depth(param_name, prefix='') ----------------------------------

def mmpretrain_classifier(backbone):
    """An mmpretrain ImageClassifier around one of its backbones (the model its own constructor
    is written for); our constructor sees its ``.backbone`` like a detector's."""
    from mmpretrain.models import ImageClassifier
    head = dict(type='LinearClsHead', num_classes=10, in_channels=backbone.pop('out_channels'))
    return ImageClassifier(backbone=backbone, neck=dict(type='GlobalAveragePooling'), head=head)


MMPRETRAIN_BACKBONES = {
    'convnext': dict(type='ConvNeXt', arch=dict(depths=[1, 1, 12, 1], channels=[8, 16, 32, 64]),
                     out_channels=64),
    'vit': dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=4, num_heads=2,
                                                    feedforward_channels=64),
                img_size=32, patch_size=8, out_channels=32),
    'swin': dict(type='SwinTransformer', arch=dict(embed_dims=16, depths=[2, 2, 2, 2],
                                                   num_heads=[1, 1, 2, 2]),
                 img_size=64, out_channels=128),
}


@pytest.mark.parametrize('name', sorted(MMPRETRAIN_BACKBONES))
def test_mmpretrain_backbones_get_their_own_rules_as_mmpretrains_constructor_gives_them(name):
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor as Theirs
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = mmpretrain_classifier(dict(MMPRETRAIN_BACKBONES[name]))
    ours = by_name(model, build(model, decay_rate=0.8, decay_type='layer_wise'))
    theirs_opt = Theirs(dict(optimizer=dict(OPTIMIZER)),
                        dict(layer_decay_rate=0.8))(model).optimizer
    theirs = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in theirs_opt.param_groups:
        for p in group['params']:
            theirs[names[id(p)]] = group['lr']
    assert set(ours) == set(theirs)
    lrs = {n: ours[n][0] for n in ours}
    assert lrs == pytest.approx(theirs, rel=1e-12)
    backbone_lrs = {lr for n, lr in lrs.items() if n.startswith('backbone.')}
    assert len(backbone_lrs) >= 3, 'decay must actually vary over the backbone'
    assert MMPRETRAIN_MODELS.get('ImageClassifier') is not None


def test_mmpretrain_backbone_refuses_stage_wise_with_the_reason():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = mmpretrain_classifier(dict(MMPRETRAIN_BACKBONES['convnext']))
    with pytest.raises(ValueError, match="mmpretrain's convention.*decay_type='layer_wise'"):
        build(model, decay_rate=0.9, decay_type='stage_wise')


class _Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

    def get_layer_depth(self, param_name, decay_type='layer_wise'):
        return 3, 8  # every parameter on one id: decay does nothing


class _Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)

    def get_layer_depth(self, name, stage):
        return 0, 2


def test_a_backbone_that_puts_everything_on_one_id_is_an_error_not_a_no_op():
    model = nn.Module()
    model.backbone = _Flat()
    with pytest.raises(ValueError, match='every backbone parameter on layer id 3 of 8'):
        build(model, decay_rate=0.9)


def test_an_unknown_get_layer_depth_signature_names_both_conventions():
    model = nn.Module()
    model.backbone = _Odd()
    with pytest.raises(TypeError, match=r"neither known convention.*decay_type.*prefix=''"):
        build(model, decay_rate=0.9)
