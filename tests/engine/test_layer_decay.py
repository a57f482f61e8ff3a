"""Layer-wise lr decay: equal to mmdet's/mmseg's own constructors on real Mask R-CNN / UperNet
models, a hand-written table, GRN/custom_keys/frozen/wrapper rules, errors, log and registry."""
import logging

import pytest
import torch
import torch.nn as nn
from layer_decay_cases import OPTIMIZER, Toy, assert_table, build, by_name
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope

import convnext_backbone  # noqa: F401  (registers; applies the stack fixes mmdet:: configs need)
from convnext_backbone import ConvNeXt, LayerDecayOptimWrapperConstructor
from convnext_backbone.models.archs import resolve_arch

NUM_LAYERS = {'v1-tiny': 6, 'v1-base': 12}  # the official configs' values
RATES = {'layer_wise': 0.95, 'stage_wise': 0.9}


def installed_config(name):
    """An installed host config, e.g. ``'mmdet::_base_/models/mask-rcnn_r50_fpn.py'``."""
    return Config.fromstring(f'_base_ = {name!r}', '.py')


def host_model(kind, arch):
    """mmdet's Mask R-CNN / mmseg's UperNet (their installed configs) with our backbone."""
    channels = list(resolve_arch(arch).channels)
    backbone = dict(type='convnext_backbone.ConvNeXt', arch=arch, drop_path_rate=0.4)
    if kind == 'det':
        from mmdet.registry import MODELS
        cfg = installed_config('mmdet::_base_/models/mask-rcnn_r50_fpn.py').model
        cfg.backbone = backbone
        cfg.neck.in_channels = channels
    else:
        from mmseg.registry import MODELS
        cfg = installed_config('mmseg::_base_/models/upernet_r50.py').model
        cfg.backbone, cfg.pretrained = backbone, None
        cfg.decode_head.in_channels = channels
        cfg.auxiliary_head.in_channels = channels[2]
        for head in (cfg.decode_head, cfg.auxiliary_head):
            head.norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a process group
    with DefaultScope.overwrite_default_scope('mmdet' if kind == 'det' else 'mmseg'):
        return MODELS.build(cfg)


@pytest.fixture(scope='module', params=[
    ('det', 'v1-tiny'), ('seg', 'v1-tiny'),
    # 27 stage-3 blocks (12 layer ids): the same rules at the other depth, in the full suite
    pytest.param(('det', 'v1-base'), marks=pytest.mark.slow),
    pytest.param(('seg', 'v1-base'), marks=pytest.mark.slow)], ids=str)
def host(request):
    return request.param[1], host_model(*request.param)


@pytest.fixture(scope='module')
def det_tiny():
    return host_model('det', 'v1-tiny')


class Wrapper(nn.Module):
    """DDP-like: keeps the real model in ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module


@pytest.mark.parametrize('decay_type', ['layer_wise', 'stage_wise'])
@pytest.mark.parametrize('reference', ['mmdet', 'mmseg'])
def test_equals_mmdet_and_mmseg_constructors(host, decay_type, reference):
    if reference == 'mmdet':
        from mmdet.engine.optimizers import LearningRateDecayOptimizerConstructor as Theirs
    else:
        from mmseg.engine.optimizers import LearningRateDecayOptimizerConstructor as Theirs
    arch, model = host
    cfg = dict(decay_rate=RATES[decay_type], decay_type=decay_type, num_layers=NUM_LAYERS[arch])
    theirs = by_name(model, Theirs(dict(optimizer=dict(OPTIMIZER)), dict(cfg))(model).optimizer)
    ours = by_name(model, build(model, **cfg))
    assert ours.keys() == theirs.keys()
    assert len(ours) == sum(1 for p in model.parameters() if p.requires_grad)
    wrong = {n: (ours[n], theirs[n]) for n in ours if ours[n] != pytest.approx(theirs[n], 1e-12)}
    assert not wrong
    assert len({lr for lr, _ in ours.values()}) > 3  # the decay really happened


def test_hand_written_table_layer_wise(det_tiny):
    got = by_name(det_tiny, build(det_tiny, decay_rate=0.95, decay_type='layer_wise'))
    expected = {  # v1-tiny: 8 layer ids, lr = 1e-4 * 0.95 ** (7 - id)
        'backbone.downsample_layers.0.0.weight': (6.983372960937497e-05, 0.05),  # id 0
        'backbone.downsample_layers.0.0.bias': (6.983372960937497e-05, 0.0),
        'backbone.stages.0.2.pwconv1.weight': (7.350918906249998e-05, 0.05),  # id 1
        'backbone.stages.0.2.gamma': (7.350918906249998e-05, 0.0),
        'backbone.downsample_layers.1.1.weight': (7.737809374999998e-05, 0.05),  # id 2
        'backbone.stages.2.4.pwconv1.weight': (8.573749999999999e-05, 0.05),  # id 4
        'backbone.stages.2.8.dwconv.weight': (9.025e-05, 0.05),  # id 5
        'backbone.stages.3.2.pwconv2.weight': (9.5e-05, 0.05),  # id 6
        'backbone.norm3.weight': (1e-4, 0.0),  # output norm: head id 7
        'neck.lateral_convs.0.conv.weight': (1e-4, 0.05),
        'rpn_head.rpn_conv.bias': (1e-4, 0.0),
        'roi_head.bbox_head.fc_cls.weight': (1e-4, 0.05),
    }
    assert_table(got, expected)


def test_hand_written_table_stage_wise(det_tiny):
    got = by_name(det_tiny, build(det_tiny, decay_rate=0.9, decay_type='stage_wise'))
    expected = {  # lr = 1e-4 * 0.9 ** (7 - id), id = 0 for downsampling, stage + 1 in stages
        'backbone.downsample_layers.2.1.weight': (4.782969000000001e-05, 0.05),
        'backbone.stages.0.0.pwconv1.weight': (5.3144100000000005e-05, 0.05),
        'backbone.stages.1.2.pwconv2.bias': (5.904900000000001e-05, 0.0),
        'backbone.stages.2.8.pwconv1.weight': (6.561e-05, 0.05),
        'backbone.stages.3.0.gamma': (7.290000000000001e-05, 0.0),
        'roi_head.mask_head.conv_logits.weight': (1e-4, 0.05),
    }
    assert_table(got, expected)


def test_v2_grn_never_decayed():
    model = Toy(ConvNeXt(arch='v2-atto'), 320)
    got = by_name(model, build(model, decay_rate=0.9))
    grn = [n for n in got if '.grn.' in n]
    assert grn and all(got[n][1] == 0.0 for n in grn)
    assert got['backbone.stages.1.0.pwconv1.weight'][1] == 0.05


class QueryHead(nn.Module):
    """What DETR-style and Mask2Former heads hold: query / query-feature / level embeddings
    (``nn.Embedding``), a bare 2-D level embedding (Deformable DETR, DINO), attention, norms."""

    def __init__(self, dims=8):
        super().__init__()
        self.query_embed = nn.Embedding(5, dims)
        self.query_feat = nn.Embedding(5, dims)
        self.level_embed = nn.Embedding(3, dims)
        self.bare_level_embed = nn.Parameter(torch.zeros(3, dims))
        self.attn = nn.MultiheadAttention(dims, 2)
        self.norm = nn.LayerNorm(dims)
        self.ffn = nn.Linear(dims, dims)


@pytest.mark.parametrize('custom_keys', [{}, {'bare_level_embed': dict(decay_mult=0.)}],
                         ids=['rule', 'custom-key'])
def test_transformer_head_parameters_all_on_the_top_id_embeddings_undecayed(custom_keys):
    """Every parameter outside the backbone: top id (full lr); weight decay none for norms,
    biases and ``nn.Embedding`` tables, the base one for other weights; a bare-Parameter
    embedding is decayed unless a custom key says otherwise."""
    model = Toy(ConvNeXt(arch=dict(depths=[1, 1, 3, 1], channels=[8, 8, 8, 8])), 8)
    model.head = QueryHead()
    got = by_name(model, build(model, decay_rate=0.9, custom_keys=custom_keys))
    assert len(got) == len(list(model.parameters()))
    head = {n: v for n, v in got.items() if not n.startswith('backbone.')}
    bare = 0. if custom_keys else 0.05
    assert head == {
        'head.query_embed.weight': (1e-4, 0.), 'head.query_feat.weight': (1e-4, 0.),
        'head.level_embed.weight': (1e-4, 0.), 'head.bare_level_embed': (1e-4, bare),
        'head.attn.in_proj_weight': (1e-4, 0.05), 'head.attn.in_proj_bias': (1e-4, 0.),
        'head.attn.out_proj.weight': (1e-4, 0.05), 'head.attn.out_proj.bias': (1e-4, 0.),
        'head.norm.weight': (1e-4, 0.), 'head.norm.bias': (1e-4, 0.),
        'head.ffn.weight': (1e-4, 0.05), 'head.ffn.bias': (1e-4, 0.)}
    assert got['backbone.stages.2.0.pwconv1.weight'][0] < 1e-4  # the backbone still decays


@pytest.fixture(scope='module')
def toy_tiny():
    return Toy(ConvNeXt(arch='v1-tiny'), 768)


def test_custom_keys_and_mmengine_mults_compose(toy_tiny):
    custom_keys = {'backbone.stages.0': dict(lr_mult=0.5, decay_mult=0.5),
                   'head': dict(lr_mult=10.)}
    opt = build(toy_tiny, decay_rate=0.95, custom_keys=custom_keys, dwconv_decay_mult=0.2)
    got = by_name(toy_tiny, opt)
    id1 = 1e-4 * 0.5 * 0.95 ** 6  # layer id 1 scale times the custom lr_mult
    assert got['backbone.stages.0.1.pwconv1.weight'] == pytest.approx((id1, 0.025))
    assert got['backbone.stages.0.1.pwconv1.bias'] == pytest.approx((id1, 0.0))  # stays no-decay
    assert got['backbone.stages.0.1.dwconv.weight'] == pytest.approx((id1, 0.025))  # key wins
    assert got['backbone.stages.1.0.dwconv.weight'] == pytest.approx((7.737809374999998e-05, 0.01))
    assert got['backbone.stages.1.0.pwconv1.weight'] == pytest.approx((7.737809374999998e-05, 0.05))
    assert got['head.weight'] == pytest.approx((1e-3, 0.05))
    names = [g['group_name'] for g in opt.param_groups]
    assert len(names) == len(set(names)) and 'layer_1_decay[decay_mult=0.5,lr_mult=0.5]' in names


def test_groups_are_few_and_hold_lists(det_tiny):
    opt = build(det_tiny, decay_rate=0.95)
    n_params = sum(1 for p in det_tiny.parameters() if p.requires_grad)
    assert len(opt.param_groups) == 16  # 8 layer ids x (decay, no_decay)
    assert sum(len(g['params']) for g in opt.param_groups) == n_params


def test_frozen_stages_left_out():
    model = Toy(ConvNeXt(arch='v2-atto', frozen_stages=1), 320)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and any(n.startswith('backbone.stages.0') for n in frozen)
    got = by_name(model, build(model, decay_rate=0.9))
    assert not frozen & set(got)
    assert len(got) + len(frozen) == len(list(model.parameters()))


def test_ddp_like_wrapper(toy_tiny):
    plain = by_name(toy_tiny, build(toy_tiny, decay_rate=0.9))
    wrapped = Wrapper(Wrapper(toy_tiny))
    ctor = LayerDecayOptimWrapperConstructor(dict(optimizer=dict(OPTIMIZER)), dict(decay_rate=0.9))
    params = []
    ctor.add_params(params, wrapped)  # our own unwrapping, beyond the one level mmengine strips
    assert by_name(toy_tiny, torch.optim.AdamW(params)) == plain
    assert by_name(toy_tiny, build(Wrapper(toy_tiny), decay_rate=0.9)) == plain


@pytest.mark.parametrize('model', [nn.Sequential(nn.Linear(2, 2)), Toy(nn.Linear(2, 2), 2)],
                         ids=['no-backbone', 'backbone-without-method'])
def test_model_without_layer_depth_is_a_clear_error(model):
    with pytest.raises(TypeError, match=r'backbone.*get_layer_depth\(param_name, decay_type\)'):
        build(model, decay_rate=0.9)


@pytest.mark.parametrize('cfg, match', [
    (dict(decay_rate=0.9, decay_type='layerwise'),
     r"decay_type = 'layerwise': must be one of 'layer_wise', 'stage_wise'"),
    (dict(decay_rate=0.0), r'decay_rate = 0.0: must be a number in \(0, 1\]'),
    (dict(decay_rate=1.5), r'decay_rate = 1.5: must be a number in \(0, 1\]'),
    (dict(decay_rate='0.9'), r"decay_rate = '0.9': must be a number"),
    (dict(decay_type='layer_wise'), r'paramwise_cfg.decay_rate is missing.*Fix: --cfg-options '
     r'optim_wrapper.paramwise_cfg.decay_rate=0.9'),
])
def test_bad_config_is_a_clear_error(cfg, match):
    with pytest.raises(ValueError, match=match):
        LayerDecayOptimWrapperConstructor(dict(optimizer=dict(OPTIMIZER)), cfg)


def test_num_layers_checked_against_backbone(toy_tiny):
    build(toy_tiny, decay_rate=1.0, num_layers=6)  # agreeing: fine (and rate 1 is allowed)
    with pytest.raises(ValueError, match='num_layers=12 disagrees.*ConvNeXt.*num_layers=6'):
        build(toy_tiny, decay_rate=0.9, num_layers=12)


def test_logs_one_compact_table():
    model = Toy(ConvNeXt(arch='v2-atto', frozen_stages=1), 320)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        opt = build(model, decay_rate=0.9, custom_keys={'head': dict(lr_mult=2.)})
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records if r.levelno >= logging.INFO]  # not registry debug
    assert len(messages) == 1, messages[:5]  # no per-parameter lines, no frozen warnings
    lines = messages[0].splitlines()
    assert len(lines) == 2 + len(opt.param_groups)  # header, column names, one row per group
    assert len(opt.param_groups) < sum(len(g['params']) for g in opt.param_groups)
    assert 'frozen skipped' in lines[0] and lines[1].split()[:3] == ['group', 'layer', 'lr']


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_through_registry_from_host_scope(toy_tiny, scope):
    cfg = dict(constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
               optimizer=dict(OPTIMIZER),
               paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise'))
    with DefaultScope.overwrite_default_scope(scope):
        wrapper = build_optim_wrapper(toy_tiny, cfg)
    assert isinstance(wrapper, OptimWrapper)
    assert all('layer_id' in g for g in wrapper.optimizer.param_groups)
    direct = build(toy_tiny, decay_rate=0.95)
    assert by_name(toy_tiny, wrapper.optimizer) == by_name(toy_tiny, direct)
