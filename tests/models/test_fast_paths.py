"""The block's fast paths equal the official computation (``fast_path=False``) to float rounding.

Each path is exercised where it is meant to run and checked to have run (the path
``fast_path.block_path`` names, and the kernels it calls): the oneDNN inference
kernels (no_grad, fp32 CPU), the layer scale folded into ``pwconv2`` (large row counts) or
applied by ``addcmul`` (small ones), the residual add inside the GEMM, stochastic depth (same
random mask as ``drop_path``), and the depthwise convolution's own backward. Gradients are
compared for the input and every parameter. Tracers (TorchScript, FX) must see plain aten ops.
Whole-model parity with timm and mmpretrain, in eval and in training, is in tests/test_parity.py
and below; which path a block takes, in test_fast_path_decision.py.
"""
import copy

import pytest
import torch
from block_cases import make_block, make_input

from convnext_backbone.models import ConvNeXt, depthwise, fused_linear
from convnext_backbone.models.depthwise import depthwise_conv
from convnext_backbone.models.fast_path import block_path
from convnext_backbone.models.switches import SWITCHES

from checkpoint_layouts import assert_close_scaled, randomise_

ONEDNN = SWITCHES.onednn


def _grads(block, x):
    """Output and gradients (input, then every parameter by name) for a loss using all outputs."""
    x = x.detach().clone().requires_grad_()
    block.zero_grad(set_to_none=True)
    out = block(x)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    (out * probe).sum().backward()
    grads = {'input': x.grad}
    grads.update({name: p.grad for name, p in block.named_parameters()})
    return out.detach(), grads


class _Spy:
    """Counts calls of the oneDNN ops and of the custom depthwise backward."""

    def __init__(self, monkeypatch):
        self.calls = []
        mkldnn = torch.ops.mkldnn
        for name in ('_linear_pointwise',):
            op = getattr(mkldnn, name)

            def wrapped(*args, _op=op, **kwargs):
                self.calls.append('linear_pointwise')
                return _op(*args, **kwargs)
            wrapped.binary = self._wrap_binary(op.binary)
            monkeypatch.setattr(torch.ops.mkldnn, name, wrapped, raising=False)
        original = depthwise.DepthwiseConv2dCPU.apply

        def dw_apply(*args):
            self.calls.append('dwconv')
            return original(*args)
        monkeypatch.setattr(depthwise.DepthwiseConv2dCPU, 'apply', dw_apply)

    def _wrap_binary(self, op):
        def binary(*args, **kwargs):
            self.calls.append('linear_pointwise.binary')
            return op(*args, **kwargs)
        return binary


# ------------------------------------------------------------------ inference
@pytest.mark.skipif(not ONEDNN, reason='torch built without oneDNN')
@pytest.mark.parametrize('grn,layer_scale', [(False, 0.5), (True, None), (False, None)],
                         ids=['v1', 'v2', 'v1-no-layer-scale'])
@pytest.mark.parametrize('size', [(9, 9), (2, 3)], ids=['fold', 'addcmul'])
def test_inference_onednn_path(grn, layer_scale, size, monkeypatch):
    """no_grad + fp32 CPU: oneDNN GEMM+GELU and GEMM+bias+residual (or GEMM then addcmul)."""
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', False)  # whatever this CPU's ISA
    block, plain = make_block(grn=grn, layer_scale=layer_scale)
    x = make_input(2, 16, *size)
    spy = _Spy(monkeypatch)
    for mode in ('eval', 'train'):  # train mode without drop path: same kernels
        getattr(block, mode)()
        getattr(plain, mode)()
        with torch.no_grad():
            expected = plain(x)
            spy.calls.clear()
            out = block(x)
            path = block_path(block, x)
        assert path.name == 'onednn_inference'
        assert path.fold_layer_scale == (layer_scale is not None and size == (9, 9))
        assert 'linear_pointwise' in spy.calls
        fused_add = layer_scale is None or size == (9, 9)  # rows >= hidden: layer scale folded
        assert ('linear_pointwise.binary' in spy.calls) == fused_add
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert_close_scaled(out, expected)


@pytest.mark.parametrize('grn,layer_scale', [(False, 0.5), (True, None), (False, None)],
                         ids=['v1', 'v2', 'v1-no-layer-scale'])
@pytest.mark.parametrize('size', [(9, 9), (2, 3)], ids=['fold', 'addcmul'])
def test_inference_mkl_path(grn, layer_scale, size, monkeypatch):
    """no_grad + fp32 CPU with aten's (MKL) GEMMs (the AVX2 choice): GEMM, GELU in place,
    residual accumulated by the second GEMM; no oneDNN matmul runs."""
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', True)
    block, plain = make_block(grn=grn, layer_scale=layer_scale)
    x = make_input(2, 16, *size)
    spy = _Spy(monkeypatch)
    for mode in ('eval', 'train'):
        getattr(block, mode)(), getattr(plain, mode)()
        with torch.no_grad():
            path = block_path(block, x)
            out, expected = block(x), plain(x)
        assert path.name == 'mkl_inference'
        assert path.fold_layer_scale == (layer_scale is not None and size == (9, 9))
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert_close_scaled(out, expected)
    assert spy.calls == []


@pytest.mark.skipif(not ONEDNN, reason='torch built without oneDNN')
@pytest.mark.parametrize('gemm', ['onednn', 'mkl'])
@pytest.mark.parametrize('layer_scale,drop_path', [(0.5, 0.), (None, 0.), (0.5, 0.5)],
                         ids=['fused-residual', 'no-layer-scale', 'drop-path-no-grad'])
def test_inference_in_row_chunks(layer_scale, drop_path, gemm, monkeypatch):
    """Large inputs run the inference MLP in row chunks (forced here with small thresholds);
    uneven last chunk included; oneDNN's fused matmuls or aten's (MKL) GEMMs into reused
    buffers. Training mode under no_grad draws the drop-path mask as drop_path() does."""
    monkeypatch.setattr(SWITCHES, 'chunk_elements', 64 * 30)
    monkeypatch.setattr(SWITCHES, 'chunk_hidden', 64 * 70)  # 70 rows a chunk, 162 rows
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', gemm == 'mkl')
    calls = []
    kernel = f'{gemm}_mlp_in_chunks'
    original = getattr(fused_linear, kernel)
    monkeypatch.setattr(fused_linear, kernel, lambda *a: calls.append(1) or original(*a))
    spy = _Spy(monkeypatch)
    block, plain = make_block(layer_scale=layer_scale, drop_path=drop_path)
    x = make_input(2, 16, 9, 9)
    for mode in ('eval', 'train'):
        getattr(block, mode)(), getattr(plain, mode)()
        with torch.no_grad():
            assert block_path(block, x).name == f'{gemm}_inference_chunked'
            torch.manual_seed(5)
            out = block(x)
            torch.manual_seed(5)
            expected = plain(x)
        assert_close_scaled(out, expected)
    assert len(calls) == 2
    assert bool(spy.calls) == (gemm == 'onednn')


def test_inference_channels_first_input_and_inference_mode():
    """Ordinary NCHW input (copies, no fused residual) and torch.inference_mode give the same."""
    block, plain = make_block()
    block.eval(), plain.eval()
    for channels_last in (False, True):
        x = make_input(2, 16, 9, 9, channels_last=channels_last)
        with torch.inference_mode():
            assert_close_scaled(block(x), plain(x))


# ------------------------------------------------------------------ training
@pytest.mark.parametrize('grn,layer_scale', [(False, 0.5), (True, None)], ids=['v1', 'v2'])
@pytest.mark.parametrize('size', [(9, 9), (2, 3)], ids=['fold', 'addcmul'])
@pytest.mark.parametrize('channels_last', [True, False], ids=['cl', 'cf'])
@pytest.mark.parametrize('gemm', ['onednn', 'mkl'])
def test_training_outputs_and_gradients(grn, layer_scale, size, channels_last, gemm,
                                        monkeypatch):
    """The training path (autograd functions with oneDNN's or aten's GEMMs, the depthwise
    convolution's own backward): output and every gradient."""
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', gemm == 'mkl')
    block, plain = make_block(grn=grn, layer_scale=layer_scale)
    block.train(), plain.train()
    x = make_input(2, 16, *size, channels_last=channels_last)
    spy = _Spy(monkeypatch)
    path = block_path(block, x.detach().requires_grad_())
    onednn = ONEDNN and gemm == 'onednn'
    assert (path.name, path.depthwise_weight_grad, path.onednn_gemms) == (
        'cpu_training', True, onednn)
    out, grads = _grads(block, x)
    assert 'dwconv' in spy.calls  # the custom depthwise backward
    assert ('linear_pointwise' in spy.calls) == onednn  # GEMMs of the autograd functions
    expected, expected_grads = _grads(plain, x)
    assert_close_scaled(out, expected)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        assert grad is not None, name
        assert_close_scaled(grad, expected_grads[name])


@pytest.mark.parametrize('size', [(9, 9), (2, 3)], ids=['fold', 'addcmul'])
@pytest.mark.parametrize('layer_scale', [0.5, None], ids=['layer-scale', 'no-layer-scale'])
def test_drop_path_same_mask_as_drop_path(size, layer_scale):
    """Stochastic depth draws the per-sample mask as drop_path() does: same seed, same result."""
    block, plain = make_block(layer_scale=layer_scale, drop_path=0.5)
    block.train(), plain.train()
    x = make_input(8, 16, *size)
    torch.manual_seed(3)
    out, grads = _grads(block, x)
    torch.manual_seed(3)
    expected, expected_grads = _grads(plain, x)
    dropped = [(out[i] - x[i]).abs().max() == 0 for i in range(8)]
    assert any(dropped) and not all(dropped)  # the mask did something
    assert_close_scaled(out, expected)
    for name, grad in grads.items():
        assert_close_scaled(grad, expected_grads[name])
    block.eval(), plain.eval()  # eval: no stochastic depth
    with torch.no_grad():
        assert_close_scaled(block(x), plain(x))


# ------------------------------------------------------------------ depthwise convolution
@pytest.mark.parametrize('dilation', [1, 2, 4])
@pytest.mark.parametrize('requires', ['all', 'weight', 'input'])
@pytest.mark.parametrize('shape', [(2, 8, 11, 7), (3, 4, 1, 2), (2, 8, 17, 19)],
                         ids=['grouped', 'tiny', 'per-sample'])
def test_depthwise_conv_backward(requires, shape, dilation):
    """Input, weight and bias gradients of the custom backward equal aten's (both ways of
    computing the weight gradient: samples as groups, or one convolution per sample), dilated
    (``output_stride`` 16 and 8) or not."""
    n, c, h, w = shape
    conv = torch.nn.Conv2d(c, c, 7, padding=3 * dilation, dilation=dilation, groups=c)
    randomise_(conv, seed=2)
    x = make_input(*shape)
    g = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    results = []
    for fn in (depthwise_conv, lambda m, t: m(t)):
        x_ = x.detach().clone().requires_grad_(requires in ('all', 'input'))
        conv.zero_grad(set_to_none=True)
        conv.requires_grad_(requires in ('all', 'weight'))
        out = fn(conv, x_)
        out.backward(g)
        results.append((out, x_.grad, conv.weight.grad, conv.bias.grad))
    assert results[0][0].grad_fn.name().startswith('DepthwiseConv2dCPU')
    for got, expected in zip(*results):
        assert (got is None) == (expected is None)
        if got is not None:
            assert_close_scaled(got, expected)


@pytest.mark.parametrize('gemm', ['onednn', 'mkl'])
@pytest.mark.parametrize('grn,layer_scale', [(False, 0.5), (True, None)], ids=['v1', 'v2'])
def test_dilated_block_equals_plain(grn, layer_scale, gemm, monkeypatch):
    """A dilated block (``output_stride`` < 32) on its fast paths: inference output, and
    training output and every gradient through the custom depthwise backward."""
    if gemm == 'onednn' and not ONEDNN:
        pytest.skip('torch built without oneDNN')
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', gemm == 'mkl')
    block, plain = make_block(grn=grn, layer_scale=layer_scale, dilation=2)
    x = make_input(2, 16, 9, 11)
    with torch.no_grad():
        assert block_path(block.eval(), x).name == f'{gemm}_inference'
        assert_close_scaled(block(x), plain.eval()(x))
    spy = _Spy(monkeypatch)
    block.train(), plain.train()
    assert block_path(block, x.detach().requires_grad_()).depthwise_weight_grad
    out, grads = _grads(block, x)
    assert 'dwconv' in spy.calls
    expected, expected_grads = _grads(plain, x)
    assert_close_scaled(out, expected)
    for name, grad in grads.items():
        assert_close_scaled(grad, expected_grads[name])


# ------------------------------------------------------------------ tracing sees plain ops
def test_tracers_see_plain_aten_ops():
    block, plain = make_block()
    block.eval()
    x = make_input(1, 16, 9, 9)
    with torch.no_grad():
        traced = torch.jit.trace(block, x)
    assert 'mkldnn::_linear_pointwise' not in str(traced.graph)
    assert_close_scaled(traced(x), plain.eval()(x))
    graph_module = torch.fx.symbolic_trace(block)
    assert '_linear_pointwise' not in graph_module.code
    assert_close_scaled(graph_module(x), plain(x))


# ------------------------------------------------------------------ the whole backbone
@pytest.mark.parametrize('arch', ['v1-tiny', 'v2-atto'])
def test_backbone_fast_equals_plain(arch):
    """Outputs (eval, no_grad) and every gradient (train) of the whole backbone, fast vs plain."""
    torch.manual_seed(0)
    fast = ConvNeXt(arch=arch)
    randomise_(fast, seed=4)
    plain = ConvNeXt(arch=arch, fast_path=False)
    plain.load_state_dict(fast.state_dict())
    x = make_input(2, 3, 64, 64, channels_last=False)
    with torch.no_grad():
        for a, b in zip(fast.eval()(x), plain.eval()(x)):
            assert_close_scaled(a, b)
    grads = []
    for model in (fast.train(), plain.train()):
        model.zero_grad(set_to_none=True)
        outs = model(x)
        gen = torch.Generator().manual_seed(9)
        sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for name, grad in grads[0].items():
        assert_close_scaled(grad, grads[1][name])


def test_bf16_and_frozen_input_fall_back():
    """Paths outside the fast path's conditions still run (and agree)."""
    block, plain = make_block()
    x = make_input(2, 16, 9, 9)
    with torch.no_grad():
        assert_close_scaled(block.eval()(x), plain.eval()(x))  # fp32
        out = copy.deepcopy(block).to(torch.bfloat16)(x.bfloat16())
        assert out.dtype == torch.bfloat16
    block.train()
    plain.train()
    block.requires_grad_(False)
    with torch.enable_grad():  # gradients on, but nothing requires them
        assert_close_scaled(block(x), plain(x))


@pytest.mark.parametrize('arch,timm_name', [
    pytest.param('v1-tiny', 'convnext_tiny', marks=pytest.mark.slow),  # 10 s; atto: the same paths
    ('v2-atto', 'convnextv2_atto')])
def test_training_gradients_match_timm(arch, timm_name):
    """Training step (fast path) against timm: features and every backbone gradient, through our
    converter's naming. timm's features carry no output norm, so ours are compared pre-norm."""
    timm = pytest.importorskip('timm')
    from convnext_backbone.checkpoint import convert_state_dict, load_pretrained
    ref = timm.create_model(timm_name, pretrained=False, features_only=True)
    randomise_(ref, seed=6)
    ours = ConvNeXt(arch=arch)
    load_pretrained(ours, ref.state_dict(), logger='silent')
    for norm in (getattr(ours, f'norm{i}') for i in ours.out_indices):
        norm.forward = lambda t: t  # compare the stage outputs themselves
    x = make_input(2, 3, 64, 64, channels_last=False)
    grads = []
    for model in (ours.train(), ref.train()):
        outs = model(x)
        gen = torch.Generator().manual_seed(9)
        sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    timm_grads = convert_state_dict(grads[1])
    assert sorted(timm_grads) == sorted(k for k in grads[0] if not k.startswith('norm'))
    for name, grad in timm_grads.items():
        assert_close_scaled(grads[0][name], grad.reshape(grads[0][name].shape))


@pytest.mark.parametrize('grn,layer_scale', [(False, 0.5), (True, None)], ids=['v1', 'v2'])
def test_second_backward_through_the_same_graph(grn, layer_scale):
    """The autograd functions leave what they saved intact: a second backward through the same
    graph (retain_graph=True) gives the same gradients, as autograd does."""
    block, _ = make_block(grn=grn, layer_scale=layer_scale)
    x = make_input(2, 16, 9, 9).requires_grad_()
    out = block(x)
    out.sum().backward(retain_graph=True)
    first = {'input': x.grad.clone()}
    first.update({k: p.grad.clone() for k, p in block.named_parameters()})
    x.grad = None
    block.zero_grad(set_to_none=True)
    out.sum().backward()
    assert_close_scaled(x.grad, first['input'])
    for name, param in block.named_parameters():
        assert_close_scaled(param.grad, first[name])


@pytest.mark.parametrize('grn,layer_scale', [(False, 1e-6), (True, None)], ids=['v1', 'v2'])
def test_autocast_uses_plain_ops(grn, layer_scale, monkeypatch):
    """Under autocast (the paper's fp16/bf16 training) no custom autograd function or oneDNN
    kernel runs (their backward passes assume the forward's dtypes), the layer scale is not
    folded into the weights (1e-6 * W underflows in fp16), and training gives what the plain
    block gives."""
    block, plain = make_block(grn=grn, layer_scale=layer_scale)
    block.train(), plain.train()
    x = make_input(2, 16, 9, 9)
    spy = _Spy(monkeypatch)
    results = []
    for model in (block, plain):
        x_ = x.detach().clone().requires_grad_()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model(x_)
        out.float().sum().backward()
        results.append((out.float(), x_.grad))
    assert spy.calls == []
    for got, expected in zip(*results):
        atol = 2e-2 * float(expected.abs().max())
        torch.testing.assert_close(got, expected, rtol=2e-2, atol=atol)


@pytest.mark.parametrize('switch', ['onednn', 'fold_layer_scale', 'depthwise_weight_grad'])
@pytest.mark.parametrize('grn,layer_scale', [(False, 0.5), (True, None)], ids=['v1', 'v2'])
def test_each_technique_switched_off_still_equals_plain(switch, grn, layer_scale, monkeypatch):
    """With any one technique off (what ``tools/benchmark_backbone.py --ablation`` times), the
    rest of the fast path still computes the official block: inference and gradients."""
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', False)  # whatever this CPU's ISA
    monkeypatch.setattr(SWITCHES, switch, False)
    spy = _Spy(monkeypatch)
    block, plain = make_block(grn=grn, layer_scale=layer_scale)
    x = make_input(2, 16, 9, 9)
    with torch.no_grad():
        assert_close_scaled(block.eval()(x), plain.eval()(x))
    out, grads = _grads(block.train(), x)
    expected, expected_grads = _grads(plain.train(), x)
    assert_close_scaled(out, expected)
    for name, grad in grads.items():
        assert_close_scaled(grad, expected_grads[name])
    assert ('dwconv' in spy.calls) == (switch != 'depthwise_weight_grad')
    assert ('linear_pointwise' in spy.calls) == (ONEDNN and switch != 'onednn')
