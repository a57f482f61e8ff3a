"""convnext_backbone.checkpoint: reading, format detection, conversion and strict loading of
every source format (what it refuses: test_pretrained_weights_refused.py).

Real layouts come from the real libraries (timm and mmpretrain models, shrunk to a tiny arch);
the official and FCMAE layouts from test-side writers (tests/checkpoint_layouts.py). Big archs
(v1-small/base) are built on the meta device: their shapes are real, nothing is allocated.
"""
import logging
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import ConvNeXt as MMPConvNeXt
from timm.models.convnext import ConvNeXt as TimmConvNeXt
from tiny_convnext import CHANNELS, DEPTHS, ours, randomised_ours

from convnext_backbone.checkpoint import (
    CheckpointReadError,
    UnknownCheckpointFormatError,
    convert_state_dict,
    detect_format,
    load_pretrained,
    read_state_dict,
    save_state_dict,
)

from checkpoint_layouts import minkowski_conv, official_to_fcmae, randomise_, timm_to_official


def timm_model(grn=False, **kwargs) -> TimmConvNeXt:
    model = TimmConvNeXt(depths=DEPTHS, dims=CHANNELS, num_classes=5, use_grn=grn,
                         ls_init_value=None if grn else 1e-6, **kwargs).eval()
    randomise_(model, seed=int(grn))
    return model


def mmp_model(grn=False, **kwargs) -> MMPConvNeXt:
    model = MMPConvNeXt(arch=dict(depths=list(DEPTHS), channels=list(CHANNELS)),
                        use_grn=grn, layer_scale_init_value=0. if grn else 1e-6,
                        gap_before_final_norm=False, **kwargs)
    model.eval()  # mmpretrain's train() returns None, so no chaining
    randomise_(model, seed=7)
    return model


def assert_same_tensors(model: torch.nn.Module, expected: dict, keys=None) -> None:
    state = model.state_dict()
    for key in keys or expected:
        torch.testing.assert_close(state[key], expected[key], rtol=0, atol=0, msg=key)


# ----------------------------------------------------------------------------- detection
def test_detect_each_format():
    timm_sd = timm_model().state_dict()
    official = timm_to_official(timm_model(grn=True).state_dict())
    mmp = mmp_model(out_indices=(3,))
    mmp_classifier = {**{'backbone.' + k: v for k, v in mmp.state_dict().items()},
                      'head.fc.weight': torch.zeros(5, 32), 'head.fc.bias': torch.zeros(5)}
    assert detect_format(timm_sd) == 'timm'
    features = {'stem_0.weight': timm_sd['stem.0.weight'],
                'stages_1.blocks.0.conv_dw.weight': timm_sd['stages.1.blocks.0.conv_dw.weight']}
    assert detect_format(features) == 'timm'
    assert detect_format(official) == 'official'
    assert detect_format(mmp.state_dict()) == 'mmpretrain'
    assert detect_format(mmp_classifier) == 'mmpretrain'
    assert detect_format(official_to_fcmae(official)) == 'fcmae'
    detector = {**{'backbone.' + k: v for k, v in official.items()},
                'neck.lateral_convs.0.conv.weight': torch.zeros(1)}
    assert detect_format(detector) == 'detector'
    with pytest.raises(UnknownCheckpointFormatError, match='layer1.0.conv1.weight'):
        detect_format({'layer1.0.conv1.weight': torch.zeros(1), 'fc.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='choose one of'):
        convert_state_dict(timm_sd, fmt='caffe')


def test_official_round_trip_and_wrappers(tmp_path):
    """Our state dict is the official naming: it converts to itself through every wrapper."""
    model = randomised_ours(grn=True)
    sd = model.state_dict()
    assert dict(convert_state_dict(sd)).keys() == sd.keys()
    wrapped = {
        'state_dict.pth': {'state_dict': sd, 'meta': {'epoch': 3}},
        'model.pth': {'model': sd, 'epoch': 300},
        'nested.pt': {'state_dict': {'model': sd}},
        'ddp.bin': {'module': {'module.' + k: v for k, v in sd.items()}},
        'plain.ckpt': sd,
    }
    for name, obj in wrapped.items():
        torch.save(obj, tmp_path / name)
        fresh = ours(grn=True)
        report = load_pretrained(fresh, tmp_path / name, logger='silent')
        assert report.num_loaded == len(sd) and not report.fresh, name
        assert_same_tensors(fresh, sd)


def test_ema_is_opt_in(tmp_path):
    raw, ema = {'a': torch.zeros(1)}, {'a': torch.ones(1)}
    torch.save({'model': raw, 'model_ema': ema}, tmp_path / 'ckpt.pth')
    assert read_state_dict(tmp_path / 'ckpt.pth')['a'].item() == 0
    assert read_state_dict(tmp_path / 'ckpt.pth', key='model_ema')['a'].item() == 1
    with pytest.raises(CheckpointReadError, match="no 'missing' entry"):
        read_state_dict(tmp_path / 'ckpt.pth', key='missing')


def test_safetensors_write_read(tmp_path):
    model = randomised_ours()
    sd = model.state_dict()
    save_state_dict(sd, tmp_path / 'w.safetensors', metadata={'source': 'test'})
    save_state_dict(sd, tmp_path / 'w.pth')
    for name in ('w.safetensors', 'w.pth'):
        back = read_state_dict(tmp_path / name)
        assert back.keys() == sd.keys()
        for key in sd:
            torch.testing.assert_close(back[key], sd[key], rtol=0, atol=0)
    # the torch file needs nothing beyond weights_only
    assert set(torch.load(tmp_path / 'w.pth', weights_only=True)) == {'state_dict', 'meta'}
    from safetensors import safe_open
    with safe_open(str(tmp_path / 'w.safetensors'), framework='pt') as f:
        assert f.metadata()['source'] == 'test'


# ----------------------------------------------------------------------------- conversions
@pytest.mark.parametrize('grn', [False, True], ids=['v1', 'v2'])
@pytest.mark.parametrize('conv_mlp', [False, True], ids=['linear_mlp', 'conv_mlp'])
def test_timm_variants_give_same_outputs(grn, conv_mlp):
    """timm Linear-MLP and conv-MLP (1x1 conv, LayerNorm2d) blocks both convert exactly."""
    ref = timm_model(grn, conv_mlp=conv_mlp)
    model = ours(grn)
    report = load_pretrained(model, ref.state_dict(), logger='silent')
    assert len(report.fresh) == 8
    for i in range(4):  # identity output norms: compare raw stage outputs
        getattr(model, f'norm{i}').reset_parameters()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = ref.forward_intermediates(x, intermediates_only=True)
        out = model(x)
    for o, e in zip(out, expected):
        torch.testing.assert_close(o, F.layer_norm(e.permute(0, 2, 3, 1), (e.shape[1],), eps=1e-6)
                                   .permute(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


def test_mmpretrain_classifier_drops_pre_head_norm():
    """An mmpretrain classifier keeps its pooled pre-head norm as backbone.norm3: dropped, and
    our output norms start fresh; head.* dropped too."""
    mmp = mmp_model(out_indices=(3,))
    ckpt = {**{'backbone.' + k: v for k, v in mmp.state_dict().items()},
            'head.fc.weight': torch.zeros(5, 32), 'head.fc.bias': torch.zeros(5)}
    model = ours()
    report = load_pretrained(model, ckpt, logger='silent')
    assert sorted(report.dropped) == ['backbone.norm3.bias', 'backbone.norm3.weight',
                                      'head.fc.bias', 'head.fc.weight']
    assert len(report.fresh) == 8
    torch.testing.assert_close(model.stages[2][1].dwconv.weight,
                               mmp.stages[2][1].depthwise_conv.weight, rtol=0, atol=0)


def test_fcmae_kernels_match_a_direct_minkowski_conv():
    """Converted FCMAE kernels, run by F.conv2d, equal the conv computed offset by offset from
    the MinkowskiEngine kernel (dense 2x2 stride 2 and depthwise 7x7)."""
    gen = torch.Generator().manual_seed(5)
    dense_k, dense_b = torch.randn(4, 6, 10, generator=gen), torch.randn(1, 10, generator=gen)
    dw_k, dw_b = torch.randn(49, 6, generator=gen), torch.randn(1, 6, generator=gen)
    ckpt = {'encoder.downsample_layers.1.1.kernel': dense_k,
            'encoder.downsample_layers.1.1.bias': dense_b,
            'encoder.stages.1.0.dwconv.kernel': dw_k, 'encoder.stages.1.0.dwconv.bias': dw_b,
            'encoder.stages.1.0.grn.gamma': torch.ones(1, 24),
            'encoder.stages.1.0.pwconv1.linear.weight': torch.ones(24, 6),
            'encoder.stages.1.0.norm.ln.weight': torch.ones(6),
            'mask_token': torch.zeros(1, 8, 1, 1)}
    assert detect_format(ckpt) == 'fcmae'
    out = convert_state_dict(ckpt)
    assert out.dropped == ['mask_token']
    assert out['stages.1.0.grn.gamma'].shape == (24,)
    assert out['stages.1.0.pwconv1.weight'].shape == (24, 6)
    assert out['stages.1.0.norm.weight'].shape == (6,)
    x = torch.randn(2, 6, 14, 10, generator=gen)
    torch.testing.assert_close(
        F.conv2d(x, out['downsample_layers.1.1.weight'], out['downsample_layers.1.1.bias'],
                 stride=2),
        minkowski_conv(x, dense_k, dense_b, stride=2, padding=0))
    torch.testing.assert_close(
        F.conv2d(x, out['stages.1.0.dwconv.weight'], out['stages.1.0.dwconv.bias'], padding=3,
                 groups=6),
        minkowski_conv(x, dw_k, dw_b, stride=1, padding=3))


# ----------------------------------------------------------------------------- detector
@pytest.mark.parametrize('inner', ['official', 'mmpretrain'])
def test_detector_checkpoint_takes_backbone_part(inner, tmp_path):
    """An mmdet/mmseg checkpoint: backbone.* (official names, or mmpretrain's as in mmdet's
    ``mmpretrain.ConvNeXt`` configs) + neck/heads + meta; its output norms are loaded too."""
    if inner == 'official':
        source = randomised_ours(seed=12)
        backbone = source.state_dict()
    else:
        source = mmp_model(out_indices=(0, 1, 2, 3))
        backbone = source.state_dict()
    ckpt = {'meta': {'epoch': 36, 'dataset_meta': {'classes': ('a', 'b')}},
            'state_dict': {**{'backbone.' + k: v for k, v in backbone.items()},
                           'neck.lateral_convs.0.conv.weight': torch.zeros(4, 8, 1, 1),
                           'rpn_head.rpn_conv.weight': torch.zeros(4, 4, 3, 3),
                           'roi_head.bbox_head.fc_cls.weight': torch.zeros(3, 4)}}
    torch.save(ckpt, tmp_path / 'det.pth')
    model = ours()
    report = load_pretrained(model, tmp_path / 'det.pth', logger='silent')
    assert report.format == f'detector/{inner}'
    assert not report.fresh and report.num_loaded == len(model.state_dict())
    assert sorted(report.dropped) == ['neck.lateral_convs.0.conv.weight',
                                      'roi_head.bbox_head.fc_cls.weight',
                                      'rpn_head.rpn_conv.weight']
    for i in range(4):
        torch.testing.assert_close(getattr(model, f'norm{i}').weight,
                                   backbone[f'norm{i}.weight'], rtol=0, atol=0)
    torch.testing.assert_close(model.stages[2][1].pwconv2.weight,
                               next(v for k, v in backbone.items()
                                    if k.startswith('stages.2.1.') and 'conv2.weight' in k),
                               rtol=0, atol=0)

    # fewer out_indices: the extra output norms are dropped and reported, not an error
    model = ours(out_indices=(2, 3))
    report = load_pretrained(model, tmp_path / 'det.pth', logger='silent')
    assert {'norm0.weight', 'norm1.bias'} <= set(report.dropped)


@pytest.mark.parametrize('zipped', [True, False], ids=['zip', 'legacy'])
def test_mmengine_training_checkpoint_with_message_hub(zipped, tmp_path):
    """mmengine checkpoints carry HistoryBuffer and numpy objects beside the weights; they are
    read with inert placeholders (weights_only=True alone refuses them). Both torch formats."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_checkpoint_hub')
    hub.update_scalar('train/loss', np.float32(1.5))
    hub.update_info('iter', np.int64(7))
    sd = randomised_ours().state_dict()
    ckpt = {'meta': {'epoch': 1, 'seed': np.int64(3), 'mean': np.array([1., 2.])},
            'state_dict': {'backbone.' + k: v for k, v in sd.items()},
            'message_hub': hub.state_dict()}
    torch.save(ckpt, tmp_path / 'epoch_1.pth', _use_new_zipfile_serialization=zipped)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    model = ours()
    load_pretrained(model, tmp_path / 'epoch_1.pth', logger='silent')
    assert_same_tensors(model, sd)


# ----------------------------------------------------------------------------- integration
def test_report_is_logged_once(caplog):
    logger = logging.getLogger('test_checkpoint_report')
    with caplog.at_level(logging.INFO, logger='test_checkpoint_report'):
        report = load_pretrained(ours(), timm_model().state_dict(), logger=logger)
    records = [r.getMessage() for r in caplog.records if r.name == 'test_checkpoint_report']
    assert records == [report.summary()]
    assert 'freshly initialised: norm0, norm1, norm2, norm3' in records[0]
    assert 'head.* (4)' in records[0] and '(timm format)' in records[0]


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_init_cfg_pretrained_loads_through_init_weights(prefix, tmp_path):
    source = randomised_ours(seed=21)
    sd = source.state_dict()
    if prefix:
        sd = {prefix + k: v for k, v in sd.items()}
        sd['neck.conv.weight'] = torch.zeros(1)
    path = tmp_path / 'pretrained.safetensors'
    save_state_dict(sd, path)
    init_cfg = dict(type='Pretrained', checkpoint=str(path))
    if prefix:
        init_cfg['prefix'] = prefix
    model = ours(init_cfg=init_cfg)
    model.init_weights()
    assert_same_tensors(model, source.state_dict())
