"""The ConvNeXt backbone: output contract, parameter counts, gradients, freezing, checkpointing,
drop path, exactness against an independent functional reference, and error messages.
CPU, tiny inputs; big archs are only built on the 'meta' device. Layer depths and the mmengine
side (registries, init_weights) have their own files."""
import functools

import pytest
import torch
import torch.nn.functional as F

from convnext_backbone.models import ARCH_SETTINGS, ConvNeXt, resolve_arch

SMALL = ['v1-tiny', 'v2-atto', 'v2-femto', 'v2-pico', 'v2-nano']
# Cheap stand-ins with the real block types, for tests that build several models.
V1_MINI = dict(depths=[1, 1, 3, 1], channels=[8, 16, 32, 64], grn=False)
V2_MINI = dict(depths=[1, 1, 3, 1], channels=[8, 16, 32, 64], grn=True)
# Published parameter counts (millions) of the ImageNet-1K classification models.
PUBLISHED_M = {
    'v1-tiny': 28.59, 'v1-small': 50.22, 'v1-base': 88.59, 'v1-large': 197.77,
    'v1-xlarge': 350.20, 'v2-atto': 3.71, 'v2-femto': 5.23, 'v2-pico': 9.07, 'v2-nano': 15.62,
    'v2-tiny': 28.64, 'v2-base': 88.72, 'v2-large': 197.96, 'v2-huge': 660.29}


@functools.lru_cache(maxsize=None)
def _cached(arch):
    """A default model in eval mode, shared by read-only tests."""
    torch.manual_seed(0)
    return ConvNeXt(arch=arch).eval()


def _probe_loss(outs):
    """A loss that depends on every output value (a plain sum or sum of squares of a
    LayerNorm output is constant and would give zero gradients)."""
    gen = torch.Generator().manual_seed(123)
    return sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)


# ------------------------------------------------------------------ output contract
@pytest.mark.parametrize('size', [(64, 64), (67, 45)])
@pytest.mark.parametrize('arch', SMALL)
def test_outputs_channels_strides_and_sizes(arch, size):
    model = _cached(arch)
    spec = resolve_arch(arch)
    assert model.out_channels == spec.channels
    assert model.out_strides == (4, 8, 16, 32)
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 4
    h, w = size[0] // 4, size[1] // 4
    for i, out in enumerate(outs):
        assert out.shape == (2, spec.channels[i], h, w)
        assert out.is_contiguous()  # NCHW memory: mmcv's CPU RoIAlign reads it raw
        assert torch.isfinite(out).all()
        h, w = h // 2, w // 2


def test_out_indices_negative_and_int():
    torch.manual_seed(0)
    model = ConvNeXt(arch='v2-atto', out_indices=(-1, 1))
    assert model.out_indices == (1, 3)
    assert model.out_channels == (80, 320) and model.out_strides == (8, 32)
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [80, 320]
    single = ConvNeXt(arch='v2-atto', out_indices=0)
    assert single.out_indices == (0,) and len(single(torch.randn(1, 3, 32, 32))) == 1


def test_custom_three_stage_arch():
    model = ConvNeXt(arch=dict(depths=[1, 2, 1], channels=[8, 16, 32], grn=True),
                     in_channels=1, out_indices=(0, 1, 2))
    assert model.num_stages == 3 and model.out_strides == (4, 8, 16)
    assert model.num_layers == 3  # deep stage = stage 1: ids 2.., + ceil(2 / 3)
    outs = model(torch.randn(1, 1, 32, 48))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 8, 12), (1, 16, 4, 6), (1, 32, 2, 3)]


# ------------------------------------------------------------------ parameter counts
def _classification_params(spec, in_channels=3, num_classes=1000):
    """Closed-form parameter count of the official classification model (with its head)."""
    c = spec.channels
    n = in_channels * c[0] * 16 + c[0] + 2 * c[0]  # stem conv + LN
    n += sum(2 * c[i - 1] + 4 * c[i - 1] * c[i] + c[i] for i in range(1, len(c)))  # LN + conv
    for depth, ch in zip(spec.depths, c):
        block = (49 * ch + ch) + 2 * ch + (4 * ch * ch + 4 * ch) + (4 * ch * ch + ch)
        block += 2 * 4 * ch if spec.grn else ch  # GRN gamma/beta on 4C, or layer scale
        n += depth * block
    return n + 2 * c[-1] + c[-1] * num_classes + num_classes  # final norm + head


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_parameter_count_without_allocating(arch):
    spec = resolve_arch(arch)
    cls_params = _classification_params(spec)
    assert abs(cls_params / 1e6 - PUBLISHED_M[arch]) / PUBLISHED_M[arch] < 1e-3
    with torch.device('meta'):
        model = ConvNeXt(arch=arch)
    assert all(p.is_meta for p in model.parameters())
    head_and_norm = 2 * spec.channels[-1] + spec.channels[-1] * 1000 + 1000
    out_norms = sum(2 * c for c in spec.channels)
    assert sum(p.numel() for p in model.parameters()) == cls_params - head_and_norm + out_norms


def test_v1_v2_block_parameters():
    v1 = ConvNeXt(arch=V1_MINI, layer_scale_init_value=0.5)
    assert torch.equal(v1.stages[0][0].gamma, torch.full((8,), 0.5))
    assert v1.stages[0][0].grn is None
    assert torch.equal(_cached('v1-tiny').stages[3][2].gamma, torch.full((768,), 1e-6))
    assert ConvNeXt(arch=V1_MINI, layer_scale_init_value=0).stages[0][0].gamma is None
    block = _cached('v2-atto').stages[0][0]
    assert block.gamma is None and block.grn.gamma.shape == (160,)
    assert torch.count_nonzero(block.grn.gamma) == 0 and torch.count_nonzero(block.grn.beta) == 0
    v2 = ConvNeXt(arch=V2_MINI, layer_scale_init_value=1e-6)
    assert torch.equal(v2.stages[0][0].gamma, torch.full((8,), 1e-6))


def test_official_init():
    model = _cached('v1-tiny')
    w = model.stages[2][0].pwconv1.weight
    # Official: timm's trunc_normal_(std=.02), whose bounds are the absolute [-2, 2].
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.001
    assert torch.count_nonzero(model.stages[2][0].pwconv1.bias) == 0
    assert torch.count_nonzero(model.downsample_layers[0][0].bias) == 0


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize('arch', ['v1-tiny', 'v2-atto'])
def test_every_parameter_gets_a_gradient(arch):
    torch.manual_seed(0)
    model = ConvNeXt(arch=arch, drop_path_rate=0.1).train()
    _probe_loss(model(torch.randn(2, 3, 32, 32))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def _frozen_prefixes(k):
    prefixes = ['downsample_layers.0.'] if k >= 0 else []
    for i in range(k):
        prefixes += [f'stages.{i}.'] + ([f'downsample_layers.{i}.'] if i else [])
    return tuple(prefixes)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 3, 4])
def test_frozen_stages(frozen_stages):
    torch.manual_seed(0)
    model = ConvNeXt(arch='v2-atto', frozen_stages=frozen_stages, drop_path_rate=0.1)
    model.train()
    frozen = _frozen_prefixes(frozen_stages)
    _probe_loss(model(torch.randn(2, 3, 32, 32))).backward()
    for name, p in model.named_parameters():
        is_frozen = name.startswith(frozen)
        assert p.requires_grad is not is_frozen, name
        assert (p.grad is None) is is_frozen, name
    for name, m in model.named_modules():
        if name:
            assert m.training is not (name + '.').startswith(frozen), name
    assert all(getattr(model, f'norm{i}').weight.requires_grad for i in range(4))


@pytest.mark.parametrize('arch', [V1_MINI, 'v2-atto'], ids=['v1', 'v2-atto'])
def test_with_cp_same_outputs_and_gradients(arch):
    torch.manual_seed(0)
    plain = ConvNeXt(arch=arch, drop_path_rate=0.2, layer_scale_init_value=1.0,
                     frozen_stages=0).train()
    ckpt = ConvNeXt(arch=arch, drop_path_rate=0.2, layer_scale_init_value=1.0,
                    frozen_stages=0, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(1)
        outs = model(x)
        _probe_loss(outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters() if p.requires_grad}))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-6, atol=1e-7)


def test_drop_path_train_vs_eval():
    torch.manual_seed(0)
    model = ConvNeXt(arch='v2-atto', drop_path_rate=0.5, layer_scale_init_value=1.0)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for s in model.stages for b in s]
    assert rates == torch.linspace(0, 0.5, 12).tolist()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        ref = model(x)
        torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
        model.train()
        torch.manual_seed(7)
        train_a = model(x)
        torch.manual_seed(7)
        train_b = model(x)
        torch.manual_seed(8)
        train_c = model(x)
    torch.testing.assert_close(train_a, train_b, rtol=0, atol=0)
    assert not torch.allclose(train_a[-1], ref[-1])
    assert not torch.allclose(train_a[-1], train_c[-1])


# ------------------------------------------------------------------ exactness
def _ln_channels_first(x, w, b):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    return w[:, None, None] * ((x - u) / torch.sqrt(s + 1e-6)) + b[:, None, None]


def _reference_forward(model, x):
    """The official ConvNeXt math written plainly with torch.nn.functional, NCHW contiguous."""
    p = dict(model.named_parameters())
    outs = []
    for i, depth in enumerate(model.arch_spec.depths):
        d = f'downsample_layers.{i}.'
        if i == 0:
            x = F.conv2d(x, p[d + '0.weight'], p[d + '0.bias'], stride=4)
            x = _ln_channels_first(x, p[d + '1.weight'], p[d + '1.bias'])
        else:
            x = _ln_channels_first(x, p[d + '0.weight'], p[d + '0.bias'])
            x = F.conv2d(x, p[d + '1.weight'], p[d + '1.bias'], stride=2)
        for j in range(depth):
            b = f'stages.{i}.{j}.'
            y = F.conv2d(x, p[b + 'dwconv.weight'], p[b + 'dwconv.bias'], padding=3,
                         groups=x.shape[1]).permute(0, 2, 3, 1)
            y = F.layer_norm(y, y.shape[-1:], p[b + 'norm.weight'], p[b + 'norm.bias'], 1e-6)
            y = F.gelu(F.linear(y, p[b + 'pwconv1.weight'], p[b + 'pwconv1.bias']))
            if b + 'grn.gamma' in p:
                gx = torch.norm(y, p=2, dim=(1, 2), keepdim=True)
                nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
                y = p[b + 'grn.gamma'] * (y * nx) + p[b + 'grn.beta'] + y
            y = F.linear(y, p[b + 'pwconv2.weight'], p[b + 'pwconv2.bias'])
            if b + 'gamma' in p:
                y = p[b + 'gamma'] * y
            x = x + y.permute(0, 3, 1, 2).contiguous()
        if i in model.out_indices:
            outs.append(_ln_channels_first(x, p[f'norm{i}.weight'], p[f'norm{i}.bias']))
    return outs


@pytest.mark.parametrize('arch', ['v1-tiny', 'v2-atto'])
def test_channels_last_path_matches_functional_reference(arch):
    torch.manual_seed(0)
    model = ConvNeXt(arch=arch).eval()
    with torch.no_grad():  # make every bias, LN, GRN and layer-scale parameter matter
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_((1. if name.endswith('weight') else 0.) + 0.1 * torch.randn_like(p))
    x = torch.randn(2, 3, 67, 45)
    with torch.no_grad():
        ours = model(x)
        ref = _reference_forward(model, x)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='tiny'), "'v1-tiny' or 'v2-tiny'"),
    (dict(arch='v9-tiny'), r"Valid archs: 'v1-tiny'.*'v2-huge'"),
    (dict(arch=dict(depths=[1, 1, 1], channels=[8, 16])), 'same length'),
    (dict(out_indices=(0, 4)), r'\[4\] out of range.*valid indices are \[-4, 3\]'),
    (dict(out_indices=(-5,)), r'valid indices are \[-4, 3\]'),
    (dict(out_indices=(3, -1)), 'same stage twice'),
    (dict(out_indices=()), 'non-empty'),
    (dict(frozen_stages=5), r'frozen_stages must be an int in \[-1, 4\].*got 5'),
    (dict(frozen_stages=-2), r'\[-1, 4\]'),
    (dict(drop_path_rate=1.0), r'drop_path_rate must be in \[0, 1\)'),
    (dict(in_channels=0), 'in_channels must be a positive int'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match), torch.device('meta'):
        ConvNeXt(**{'arch': 'v2-atto', **kwargs})


@pytest.mark.parametrize('shape,match', [
    ((3, 64, 64), r'4-D input \(N, C, H, W\), got a 3-D.*x.unsqueeze\(0\)'),
    ((1, 1, 3, 64, 64), 'got a 5-D'),
    ((1, 4, 64, 64), r'in_channels=3 but got an input with 4 channels.*Set in_channels=4'),
    ((1, 3, 16, 64), 'too small.*>= 32'),
])
def test_bad_inputs(shape, match):
    with pytest.raises(ValueError, match=match):
        _cached('v2-atto')(torch.randn(shape))
