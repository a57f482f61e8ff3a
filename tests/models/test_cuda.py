"""The backbone on a GPU: fast path on/off equal, AMP (fp16 and bf16) training steps finite and
close to fp32, ``with_cp`` equal, outputs contiguous for mmcv's ops.

Run by ``make gpu-check`` (tools/gpu_check.py). The device is ``CONVNEXT_TEST_DEVICE`` (default
``cuda``); without a CUDA device these tests are skipped. ``tools/gpu_check.py --device cpu
--dry-run`` runs them on the CPU (where fp16 AMP training is not a recipe and is skipped), so
the checks themselves are exercised on a machine without a GPU.
"""
import copy
import os

import pytest
import torch

from convnext_backbone.models import ConvNeXt, fast_path
from convnext_backbone.models.block import ConvNeXtBlock
from convnext_backbone.models.fast_path import block_path

from checkpoint_layouts import assert_close_scaled, randomise_

DEVICE = os.environ.get('CONVNEXT_TEST_DEVICE', 'cuda')
pytestmark = pytest.mark.skipif(DEVICE == 'cuda' and not torch.cuda.is_available(),
                                reason='no CUDA device (make gpu-check runs these on a GPU)')

ARCHS = {'v1': dict(depths=[1, 1, 3, 1], channels=[16, 32, 48, 64], grn=False),
         'v2': dict(depths=[1, 1, 3, 1], channels=[16, 32, 48, 64], grn=True)}
# Relative L2 error of the parameter update of one SGD step under AMP against fp32 (about 3x
# what the forward/backward comparisons of test_mixed_precision.py measured).
UPDATE_TOLERANCE = {torch.bfloat16: 0.08, torch.float16: 0.02}


def _model(version, **kwargs) -> ConvNeXt:
    torch.manual_seed(0)
    model = ConvNeXt(arch=ARCHS[version], layer_scale_init_value=1.0, **kwargs)
    randomise_(model, seed=2)
    return model.to(DEVICE)


def _input(batch=2, size=96):
    gen = torch.Generator().manual_seed(4)
    return torch.randn(batch, 3, size, size, generator=gen).to(DEVICE)


def _loss(outs):
    gen = torch.Generator().manual_seed(8)
    return sum((o.float() * torch.randn(o.shape, generator=gen).to(o.device)).mean()
               for o in outs)


def _outputs_and_grads(model, x):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same drop-path masks for both models
    outs = model(x)
    _loss(outs).backward()
    return [o.detach() for o in outs], {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize('version', ARCHS)
def test_fast_path_on_and_off_equal(version):
    """``fast_path=True`` (on a GPU: aten ops with layer scale folded into ``pwconv2`` and the
    residual fused) against the official op-by-op block, inference and training."""
    fast = _model(version)
    plain = copy.deepcopy(fast)
    for m in plain.modules():
        if isinstance(m, ConvNeXtBlock):
            m.fast_path = False
    x = _input()
    paths = set()
    hooks = [m.register_forward_pre_hook(lambda m, a: paths.add(block_path(m, a[0]).name))
             for m in fast.modules() if isinstance(m, ConvNeXtBlock)]
    with torch.no_grad():
        for a, b in zip(fast.eval()(x), plain.eval()(x)):
            assert_close_scaled(a, b, rtol=1e-4)
    for h in hooks:
        h.remove()
    if DEVICE == 'cuda':
        assert paths == {fast_path.ATEN}
    (outs, grads), (ref_outs, ref_grads) = (_outputs_and_grads(m.train(), x)
                                            for m in (fast, plain))
    for a, b in zip(outs, ref_outs):
        assert_close_scaled(a, b, rtol=1e-4)
    for name, grad in ref_grads.items():
        assert_close_scaled(grads[name], grad, rtol=1e-3)


def _optim_wrapper(model, dtype):
    """SGD (the update is the gradient: a clean comparison) in the wrapper a run would use."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from convnext_backbone.engine import CPUAutocastOptimWrapper
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if dtype is None:
        return OptimWrapper(optimizer=optimizer)
    if DEVICE == 'cuda':
        return AmpOptimWrapper(optimizer=optimizer, dtype=dtype,
                               loss_scale=dict(init_scale=2. ** 10))
    return CPUAutocastOptimWrapper(optimizer=optimizer, dtype=dtype)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
@pytest.mark.parametrize('version', ARCHS)
def test_amp_training_step_close_to_fp32(version, dtype):
    """One training step through mmengine's AmpOptimWrapper (on the CPU: our
    CPUAutocastOptimWrapper, bf16 only): the loss and every parameter's update are finite and
    close to the fp32 step's."""
    if DEVICE == 'cpu' and dtype == torch.float16:
        pytest.skip('fp16 AMP training is a GPU recipe (CPU: bf16)')
    x = _input()
    results = []
    for amp in (None, dtype):
        model = _model(version, drop_path_rate=0.).train()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        wrapper = _optim_wrapper(model, amp)
        with wrapper.optim_context(model):
            outs = model(x)
            loss = _loss(outs)
        wrapper.update_params(loss)
        results.append((float(loss), {n: p.detach() - before[n]
                                      for n, p in model.named_parameters()}))
    (ref_loss, ref_updates), (loss, updates) = results
    assert abs(loss - ref_loss) <= UPDATE_TOLERANCE[dtype] * abs(ref_loss)
    for name, ref in ref_updates.items():
        assert torch.isfinite(updates[name]).all(), name
        assert float((updates[name] - ref).norm()) <= UPDATE_TOLERANCE[dtype] * float(
            ref.norm()), name


@pytest.mark.parametrize('version', ARCHS)
def test_with_cp_same_outputs_and_gradients(version):
    plain = _model(version, drop_path_rate=0.2).train()
    ckpt = copy.deepcopy(plain)
    ckpt.with_cp = True
    x = _input()
    (outs, grads), (ref_outs, ref_grads) = (_outputs_and_grads(m, x) for m in (ckpt, plain))
    for a, b in zip(outs, ref_outs):
        assert_close_scaled(a, b, rtol=1e-6)
    for name, grad in ref_grads.items():
        assert_close_scaled(grads[name], grad, rtol=1e-5)


@pytest.mark.parametrize('dtype', [None, torch.float16, torch.bfloat16],
                         ids=['fp32', 'fp16', 'bf16'])
def test_outputs_contiguous_for_mmcv_ops(dtype):
    """The stages run channels-last; the outputs come back NCHW-contiguous, in fp32 and under
    autocast, and mmcv's RoIAlign on them equals torchvision's (an independent implementation)
    on the same features."""
    roi_align = pytest.importorskip('mmcv.ops').RoIAlign
    tv_roi_align = pytest.importorskip('torchvision.ops').roi_align
    if DEVICE == 'cpu' and dtype == torch.float16:
        pytest.skip('fp16 autocast is a GPU recipe (CPU: bf16)')
    try:
        roi_align((1, 1), 1.)(torch.ones(1, 1, 2, 2, device=DEVICE),
                              torch.tensor([[0, 0, 0, 1, 1.]], device=DEVICE))
    except RuntimeError as error:  # mmcv built without this device's ops
        pytest.skip(f'mmcv RoIAlign does not run on {DEVICE}: {error}')
    model = _model('v1').eval()
    with torch.no_grad(), torch.autocast(DEVICE, dtype=dtype or torch.float32,
                                         enabled=dtype is not None):
        outs = model(_input(size=67))
    rois = torch.tensor([[0, 2., 3., 40., 50.], [1, 10., 0., 66., 30.]], device=DEVICE)
    for out, stride in zip(outs, model.out_strides):
        assert out.is_contiguous()
        feat = out.float()
        ours = roi_align((7, 7), 1. / stride, 2, 'avg', True)(feat, rois)
        ref = tv_roi_align(feat, rois, (7, 7), 1. / stride, 2, aligned=True)
        assert_close_scaled(ours, ref, rtol=1e-5)
