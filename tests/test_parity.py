"""Parity with independent implementations: same weights, fp32, outputs equal to rtol 1e-5.

Weights travel through our converter: a timm / mmpretrain model is randomised (layer-scale and
GRN parameters too, so every part matters), its state dict is loaded with ``load_pretrained``
into our ConvNeXt, and every stage output is compared. Before each load our model is filled with
NaN, so any tensor the load does not write shows up in the outputs.

timm's ``features_only`` features carry no output norm, so they go through the same per-output
LayerNorm as ours (our ``norm{i}``, randomised, applied with ``F.layer_norm``); mmpretrain's
outputs include its own ``norm{i}``, which the converter maps into ours. The official and FCMAE
layouts are written from timm's weights by test-side renaming (tests/checkpoint_layouts.py) and
loaded from files; they must give the same outputs as timm.
"""
import pytest
import timm
import torch
from mmpretrain.models.backbones import ConvNeXt as MMPConvNeXt

from convnext_backbone.checkpoint import load_pretrained, save_state_dict
from convnext_backbone.models import ConvNeXt

from checkpoint_layouts import (
    assert_close_scaled,
    layer_norm_2d,
    official_to_fcmae,
    randomise_,
    timm_to_official,
)

# our arch, timm model name, mmpretrain arch, mmpretrain kwargs
CASES = [
    ('v1-tiny', 'convnext_tiny', 'tiny', {}),
    ('v2-atto', 'convnextv2_atto', 'atto', dict(use_grn=True, layer_scale_init_value=0.)),
    ('v2-tiny', 'convnextv2_tiny', 'tiny', dict(use_grn=True, layer_scale_init_value=0.)),
]
IDS = [c[0] for c in CASES]
OUTPUT_NORM_KEYS = sorted(f'norm{i}.{p}' for i in range(4) for p in ('weight', 'bias'))


@pytest.fixture(scope='module')
def inputs():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope='module')
def our_models():
    """One of our backbones per arch, built once (tests overwrite every tensor)."""
    cache = {}

    def get(arch: str) -> ConvNeXt:
        if arch not in cache:
            cache[arch] = ConvNeXt(arch=arch, out_indices=(0, 1, 2, 3)).eval()
        model = cache[arch]
        with torch.no_grad():
            for param in model.parameters():
                param.fill_(float('nan'))
        return model
    return get


@pytest.fixture(scope='module', params=CASES, ids=IDS)
def timm_ref(request, inputs):
    """(our arch, timm features_only state dict, its four stage features) for random weights."""
    arch, timm_name = request.param[:2]
    ref = timm.create_model(timm_name, pretrained=False, features_only=True).eval()
    randomise_(ref, seed=1)
    with torch.no_grad():
        feats = ref(inputs)
    return arch, ref.state_dict(), feats


def _randomise_output_norms(model: ConvNeXt) -> None:
    for i in model.out_indices:
        randomise_(getattr(model, f'norm{i}'), seed=100 + i)


def _compare_with_features(ours: ConvNeXt, feats, x) -> None:
    with torch.no_grad():
        outs = ours(x)
    assert len(outs) == len(feats) == 4
    for i, (out, feat) in enumerate(zip(outs, feats)):
        expected = layer_norm_2d(feat, getattr(ours, f'norm{i}'))
        assert out.shape == expected.shape
        assert_close_scaled(out, expected)


def _as_full_timm(features_sd: dict, num_classes: int = 7) -> dict:
    """The features_only names as the full timm model names them, plus its head.norm/head.fc."""
    out = {}
    for key, value in features_sd.items():
        top, rest = key.split('.', 1)
        out[top.replace('_', '.') + '.' + rest] = value
    width = features_sd[[k for k in features_sd if k.startswith('stages_')][-1]].shape[0]
    out.update({'head.norm.weight': torch.ones(width), 'head.norm.bias': torch.zeros(width),
                'head.fc.weight': torch.zeros(num_classes, width),
                'head.fc.bias': torch.zeros(num_classes)})
    return out


def test_timm_features_only(timm_ref, our_models, inputs):
    """timm ``features_only`` (its flattened ``stem_0``/``stages_1`` names) -> ours."""
    arch, sd, feats = timm_ref
    ours = our_models(arch)
    report = load_pretrained(ours, sd, logger='silent')
    assert report.format == 'timm' and not report.dropped
    assert sorted(report.fresh) == OUTPUT_NORM_KEYS
    assert report.num_loaded == len(ours.state_dict()) - len(OUTPUT_NORM_KEYS)
    _randomise_output_norms(ours)
    _compare_with_features(ours, feats, inputs)


def test_official_layout(timm_ref, our_models, inputs, tmp_path):
    """The same weights in the official ``{'model': ...}`` layout (GRN as (1,1,1,C), final
    ``norm.*`` and ``head.*``), from a .pth file."""
    arch, sd, feats = timm_ref
    official = timm_to_official(_as_full_timm(sd))
    if arch.startswith('v2'):
        assert official['stages.0.0.grn.gamma'].shape[:3] == (1, 1, 1)
    path = tmp_path / 'official.pth'
    torch.save({'model': official, 'epoch': 300}, path)
    ours = our_models(arch)
    report = load_pretrained(ours, path, logger='silent')
    assert report.format == 'official'
    assert sorted(report.dropped) == ['head.bias', 'head.weight', 'norm.bias', 'norm.weight']
    _randomise_output_norms(ours)
    _compare_with_features(ours, feats, inputs)


@pytest.mark.parametrize('timm_ref', CASES[1:], ids=IDS[1:], indirect=True)
def test_fcmae_layout(timm_ref, our_models, inputs, tmp_path):
    """ConvNeXt-V2 FCMAE pre-training weights (MinkowskiEngine kernels and wrapper names, with a
    decoder), from a .safetensors file. (FCMAE exists for V2 only.)"""
    arch, sd, feats = timm_ref
    fcmae = official_to_fcmae(timm_to_official(_as_full_timm(sd)))
    assert fcmae['encoder.stages.0.0.dwconv.kernel'].shape[0] == 49
    path = tmp_path / 'fcmae.safetensors'
    save_state_dict(fcmae, path)
    ours = our_models(arch)
    report = load_pretrained(ours, path, logger='silent')
    assert report.format == 'fcmae'
    assert {k.split('.')[0] for k in report.dropped} == {'mask_token', 'proj', 'decoder', 'pred'}
    assert sorted(report.fresh) == OUTPUT_NORM_KEYS
    _randomise_output_norms(ours)
    _compare_with_features(ours, feats, inputs)


@pytest.mark.parametrize('arch,mmp_arch,mmp_kw', [(c[0], c[2], c[3]) for c in CASES], ids=IDS)
def test_mmpretrain(arch, mmp_arch, mmp_kw, our_models, inputs):
    """mmpretrain's ConvNeXt, its output norms norm0..3 mapped into ours."""
    ref = MMPConvNeXt(arch=mmp_arch, out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                      **mmp_kw)
    ref.eval()  # mmpretrain's train() returns None: no chaining
    randomise_(ref, seed=3)
    ours = our_models(arch)
    report = load_pretrained(ours, ref.state_dict(), logger='silent')
    assert report.format == 'mmpretrain'
    assert not report.fresh and not report.dropped
    assert report.num_loaded == len(ours.state_dict())
    with torch.no_grad():
        expected = ref(inputs)
        outs = ours(inputs)
    assert len(outs) == len(expected) == 4
    for out, exp in zip(outs, expected):
        assert_close_scaled(out, exp)
