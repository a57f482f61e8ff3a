"""``ConvNeXt(output_stride=16|8)``: the last stages dilated instead of downsampled.

Against timm's ``ConvNeXt(output_stride=...)`` with the same weights (through our converter):
every stage output in eval mode and every backbone gradient in training, fp32, to 1e-5 relative,
on an image size that is not a multiple of 32 (so the stride-1 downsampling's one-sided padding
matters). Then what must not change: parameter names and shapes (so every checkpoint loads), layer
decay ids; what must: ``out_strides``. Tiny four-stage models (tests/tiny_convnext.py).
"""
import pytest
import torch
from tiny_convnext import CHANNELS, DEPTHS, TINY

from convnext_backbone.checkpoint import convert_state_dict, load_pretrained
from convnext_backbone.models import ConvNeXt
from convnext_backbone.models.convnext import stage_dilations

from checkpoint_layouts import assert_close_scaled, layer_norm_2d, randomise_

timm_convnext = pytest.importorskip('timm.models.convnext')

SIZE = (75, 97)  # H, W: stride-4 maps 18x24, so stage 3 of the undilated net would be 2x3
STRIDES = {32: (4, 8, 16, 32), 16: (4, 8, 16, 16), 8: (4, 8, 8, 8)}


def timm_model(grn: bool, output_stride: int):
    """timm's ConvNeXt of the tiny arch, random weights (layer scale / GRN included)."""
    ref = timm_convnext.ConvNeXt(depths=DEPTHS, dims=CHANNELS, output_stride=output_stride,
                                 use_grn=grn, ls_init_value=None if grn else 1e-6,
                                 num_classes=0)
    randomise_(ref, seed=5)
    return ref


def timm_stage_outputs(ref, x):
    x = ref.stem(x)
    outs = []
    for stage in ref.stages:
        x = stage(x)
        outs.append(x)
    return outs


def ours_from(ref, grn: bool, output_stride: int, fast_path: bool) -> ConvNeXt:
    model = ConvNeXt(arch=TINY[grn], output_stride=output_stride, fast_path=fast_path)
    report = load_pretrained(model, ref.state_dict(), logger='silent')
    assert report.format == 'timm'
    assert sorted(report.fresh) == sorted(f'norm{i}.{p}' for i in range(4)
                                          for p in ('weight', 'bias'))
    randomise_(torch.nn.ModuleList([getattr(model, f'norm{i}') for i in range(4)]), seed=8)
    return model


def _probe(outs):
    gen = torch.Generator().manual_seed(9)
    return sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)


@pytest.mark.parametrize('output_stride', [16, 8])
@pytest.mark.parametrize('grn', [False, True], ids=['v1', 'v2'])
@pytest.mark.parametrize('fast_path', [True, False], ids=['fast', 'plain'])
def test_equals_timm_in_eval_and_training(grn, output_stride, fast_path):
    ref = timm_model(grn, output_stride)
    ours = ours_from(ref, grn, output_stride, fast_path)
    x = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(0))
    assert [r['reduction'] for r in ref.feature_info] == list(STRIDES[output_stride])
    with torch.no_grad():
        expected = timm_stage_outputs(ref.eval(), x)
        outs = ours.eval()(x)
        expected = [layer_norm_2d(f, getattr(ours, f'norm{i}')) for i, f in enumerate(expected)]
    last = {16: 2, 8: 1}[output_stride]  # the last stage keeps this stage's resolution
    assert outs[3].shape[2:] == outs[last].shape[2:] != outs[last - 1].shape[2:]
    for out, feat in zip(outs, expected):
        assert_close_scaled(out, feat)
    # Training (fast path: the dilated depthwise convolution's own weight gradient): every
    # gradient equals timm's, through the converter's naming.
    for norm in (getattr(ours, f'norm{i}') for i in range(4)):
        norm.forward = lambda t: t  # compare the stage outputs themselves
    grads = []
    for model, run in ((ours.train(), ours), (ref.train(), lambda t: timm_stage_outputs(ref, t))):
        model.zero_grad(set_to_none=True)
        _probe(run(x)).backward()
        grads.append({k: p.grad for k, p in model.named_parameters() if p.grad is not None})
    timm_grads = convert_state_dict(grads[1])
    assert sorted(timm_grads) == sorted(k for k in grads[0] if not k.startswith('norm'))
    for name, grad in timm_grads.items():
        assert_close_scaled(grads[0][name], grad.reshape(grads[0][name].shape))


@pytest.mark.parametrize('output_stride', [32, 16, 8])
def test_same_parameters_layer_ids_and_the_real_strides(output_stride):
    """Names and shapes as at stride 32 (any checkpoint loads unchanged), the same layer-decay
    ids in both schemes; ``out_strides`` and the feature maps have the dilated strides."""
    with torch.device('meta'):
        plain = ConvNeXt(arch='v1-tiny')
        model = ConvNeXt(arch='v1-tiny', output_stride=output_stride)
    assert model.output_stride == output_stride
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}
    for name, _ in model.named_parameters():
        for decay_type in ('layer_wise', 'stage_wise'):
            assert model.get_layer_depth(name, decay_type) == \
                plain.get_layer_depth(name, decay_type), name
    assert model.out_strides == STRIDES[output_stride]
    tiny = ConvNeXt(arch=TINY[False], output_stride=output_stride, out_indices=(0, 2, 3))
    assert tiny.out_strides == tuple(STRIDES[output_stride][i] for i in (0, 2, 3))
    with torch.no_grad():
        outs = tiny(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape[2:]) for o in outs] == [(64 // s, 96 // s) for s in tiny.out_strides]


def test_dilations_follow_the_stride():
    """(downsample dilation, block dilation) per stage; 0 = the 2x2 stride-2 downsampling."""
    assert stage_dilations(4, 32) == ((0, 1), (0, 1), (0, 1), (0, 1))
    assert stage_dilations(4, 16) == ((0, 1), (0, 1), (0, 1), (1, 2))
    assert stage_dilations(4, 8) == ((0, 1), (0, 1), (1, 2), (2, 4))
    assert stage_dilations(3, 8) == ((0, 1), (0, 1), (1, 2))
    three = ConvNeXt(arch=dict(depths=[1, 1, 1], channels=[8, 16, 32]), out_indices=(0, 1, 2))
    assert three.output_stride == 16 and three.out_strides == (4, 8, 16)  # default: its own
    assert ConvNeXt(arch=TINY[False]).output_stride == 32
    model = ConvNeXt(arch=TINY[True], output_stride=8)
    down = [layer[1] for layer in list(model.downsample_layers)[1:]]
    assert [(c.stride, c.dilation, c.kernel_size) for c in down] == [
        ((2, 2), (1, 1), (2, 2)), ((1, 1), (1, 1), (2, 2)), ((1, 1), (2, 2), (2, 2))]
    assert [model.stages[s][0].dwconv.dilation for s in range(4)] == [(1, 1), (1, 1), (2, 2),
                                                                      (4, 4)]
    assert [model.stages[s][0].dwconv.padding for s in range(4)] == [(3, 3), (3, 3), (6, 6),
                                                                     (12, 12)]


@pytest.mark.parametrize('value', [4, 64, 12, 16.0, '16', True])
def test_invalid_output_stride_is_one_clear_error(value):
    with pytest.raises(ValueError, match=r'output_stride must be one of \[8, 16, 32\] for this '
                                         rf'4-stage arch .*got {value!r}'), torch.device('meta'):
        ConvNeXt(arch='v2-atto', output_stride=value)
