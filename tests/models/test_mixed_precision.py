"""Mixed precision: the V1 and V2 backbones under autocast (bf16 and fp16) stay finite and close
to fp32, with large activations; normalisation statistics are fp32; the fast path steps aside.

Large activations: inputs scaled x50 (2x3x256x256) and every block's LayerNorm weight scaled
x1500, so that the MLP's hidden activations reach 10^3-10^4: there the spatial L2 norm in
ConvNeXt-V2's GRN exceeds fp16's range (65504) unless it is computed in fp32 (GRN's known fp16
overflow; timm's ConvNeXt-V2 gives NaN on this input under fp16 autocast). The reference is the
same model in fp32. :data:`TOLERANCE` is about twice the worst error measured here (Intel Xeon,
AVX-512, no native bf16), where timm's ConvNeXt under the same autocast measured the same errors
to two digits (docs/mixed_precision.md): bf16's 8-bit mantissa on activations of 10^3-10^4 is
what limits the gradients, not the implementation.

The ``cuda`` cases run where a GPU is (``make gpu-check``); here they are skipped.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from block_cases import make_block, make_input

from convnext_backbone.models import ConvNeXt, fast_path
from convnext_backbone.models.block import ConvNeXtBlock
from convnext_backbone.models.fast_path import block_path
from convnext_backbone.models.layers import GRN, LayerNorm2d

from checkpoint_layouts import randomise_

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device'))]
DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
# (features: max |difference| / max |fp32 feature|, worst output; measured 2.2e-2 bf16, 3.1e-3
#  fp16. Gradients: ||difference|| / ||fp32 gradient||, worst parameter or the input; measured
#  0.19 bf16, 0.04 fp16)
TOLERANCE = {torch.bfloat16: (0.05, 0.3), torch.float16: (0.01, 0.1)}
# Real block types, a few channels (the cost of a test); V2 = GRN, no layer scale.
ARCHS = {'v1': dict(depths=[1, 1, 1, 1], channels=[16, 32, 48, 64], grn=False),
         'v2': dict(depths=[1, 1, 1, 1], channels=[16, 32, 48, 64], grn=True)}
INPUT_SCALE, NORM_SCALE = 50., 1500.
_REFERENCES = {}


def large_activation_model(version: str, device: str, **kwargs) -> ConvNeXt:
    """Trained-like random weights; block LayerNorm weights scaled by :data:`NORM_SCALE`."""
    torch.manual_seed(0)
    model = ConvNeXt(arch=ARCHS[version], **kwargs)
    randomise_(model, seed=3)
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, ConvNeXtBlock):
                block.norm.weight.mul_(NORM_SCALE)
    return model.to(device)


def large_input(device: str, size: int = 256) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    return (INPUT_SCALE * torch.randn(2, 3, size, size, generator=gen)).to(device)


def forward_backward(model, x, dtype=None):
    """Features and gradients (input and every parameter) of a loss using every output value,
    under autocast in ``dtype`` (None: fp32)."""
    x = x.detach().clone().requires_grad_()
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        outs = model(x)
    gen = torch.Generator().manual_seed(9)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen).to(o.device)).sum()
               for o in outs)
    loss.backward()
    grads = {'input': x.grad}
    grads.update({n: p.grad for n, p in model.named_parameters()})
    return [o.detach().float() for o in outs], grads


def feature_error(out, ref) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def gradient_error(grad, ref) -> float:
    return float((grad.float() - ref).norm() / ref.norm())


# ------------------------------------------------------------------ whole backbones
# fp16 on the CPU: about 10 s a case (reference-loop convolutions): in the full suite only.
CPU_FP16 = pytest.mark.slow


@pytest.mark.parametrize('dtype', [torch.bfloat16, pytest.param(torch.float16, marks=CPU_FP16)],
                         ids=DTYPES.keys())
@pytest.mark.parametrize('version', ARCHS)
@pytest.mark.parametrize('device', DEVICES)
def test_backbone_under_autocast_is_finite_and_close_to_fp32(device, version, dtype):
    """Forward and backward under autocast, training mode, the default (fast path) backbone."""
    model = large_activation_model(version, device).train()
    x = large_input(device)
    if (version, device) not in _REFERENCES:  # shared by the dtypes
        _REFERENCES[version, device] = forward_backward(model, x)
    ref_outs, ref_grads = _REFERENCES[version, device]
    outs, grads = forward_backward(model, x, dtype)
    feature_tol, grad_tol = TOLERANCE[dtype]
    for out, ref in zip(outs, ref_outs):
        assert torch.isfinite(out).all()
        assert feature_error(out, ref) < feature_tol
    for name, ref in ref_grads.items():
        assert torch.isfinite(grads[name]).all(), name
        assert gradient_error(grads[name], ref) < grad_tol, name


def test_large_activations_reach_fp16_overflow_in_grn():
    """The test above exercises what it claims: in its V2 model some GRN input has a spatial
    L2 norm beyond fp16's range (computed in fp16 it would be inf)."""
    model = large_activation_model('v2', 'cpu').eval()
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(
        torch.linalg.vector_norm(a[0].double(), dim=(1, 2)).max().item()))
        for m in model.modules() if isinstance(m, GRN)]
    with torch.no_grad():
        model(large_input('cpu'))
    for h in hooks:
        h.remove()
    assert max(seen) > torch.finfo(torch.float16).max


# ------------------------------------------------------------------ statistics in fp32
@pytest.mark.parametrize('dtype', DTYPES.values(), ids=DTYPES.keys())
def test_grn_statistics_in_fp32(dtype):
    """GRN on low-precision activations whose spatial norm overflows fp16: the result equals
    GRN computed in fp64 on the same values, to the rounding of the input's dtype."""
    grn = GRN(32)
    randomise_(grn, seed=1)
    gen = torch.Generator().manual_seed(2)
    x = (2000 * torch.randn(2, 48, 48, 32, generator=gen)).to(dtype)
    assert not torch.isfinite(torch.linalg.vector_norm(x.half(), dim=(1, 2))).all()
    ref = copy.deepcopy(grn).double()(x.double())
    with torch.autocast('cpu', dtype=dtype):
        out = grn(x)
    assert out.dtype == torch.float32  # x * fp32 scale, as the official formula promotes
    assert torch.isfinite(out).all()
    eps = torch.finfo(dtype).eps
    assert feature_error(out.double(), ref) < 4 * eps
    low = copy.deepcopy(grn).to(dtype)(x)  # a model cast to the dtype: output in the dtype
    assert low.dtype == dtype and torch.isfinite(low).all()
    assert feature_error(low.double(), ref) < 4 * eps


@pytest.mark.parametrize('dtype', DTYPES.values(), ids=DTYPES.keys())
def test_layer_norm_statistics_in_fp32(dtype):
    """The block's LayerNorm and LayerNorm2d under autocast, on low-precision input with a
    large mean: equal to fp32 LayerNorm of the same values rounded once to the dtype (with
    statistics in the low dtype the error is 40-140x larger)."""
    gen = torch.Generator().manual_seed(3)
    x = (300 + torch.randn(2, 24, 8, 8, generator=gen)).to(dtype)  # NCHW
    for norm, inp, ref_of in (
            (LayerNorm2d(24), x, lambda n, t: F.layer_norm(
                t.permute(0, 2, 3, 1), (24,), n.weight, n.bias, n.eps).permute(0, 3, 1, 2)),
            (torch.nn.LayerNorm(24, eps=1e-6), x.permute(0, 2, 3, 1),
             lambda n, t: F.layer_norm(t, (24,), n.weight, n.bias, n.eps))):
        randomise_(norm, seed=4)
        ref = ref_of(norm, inp.float())
        with torch.autocast('cpu', dtype=dtype):
            out = norm(inp)
        rounding = (ref.to(dtype).float() - ref).abs().max()
        assert (out.float() - ref).abs().max() <= 2 * rounding


# ------------------------------------------------------------------ the fast path under autocast
@pytest.mark.parametrize('grad', [False, True], ids=['no_grad', 'grad'])
@pytest.mark.parametrize('grn', [False, True], ids=['v1', 'v2'])
@pytest.mark.parametrize('dtype', DTYPES.values(), ids=DTYPES.keys())
def test_block_path_under_autocast(dtype, grn, grad):
    """Under autocast every fused CPU path steps aside (its kernels and autograd functions are
    fp32-only, and their backward passes would run outside autocast): the block takes ``aten``,
    without layer-scale folding (``gamma W`` underflows in fp16) and without the depthwise
    weight-gradient convolution, and computes what the official op-by-op block computes under
    the same autocast (same output dtype, same values to the dtype's rounding)."""
    block, plain = make_block(channels=16, grn=grn)
    x = make_input(2, 16, 12, 12)  # rows >= hidden: folding would apply in fp32
    assert block_path(block, x).fold_layer_scale
    x.requires_grad_(grad)
    with torch.set_grad_enabled(grad), torch.autocast('cpu', dtype=dtype):
        path = block_path(block, x)
        out, ref = block(x), plain(x)
    assert path == fast_path.BlockPath(fast_path.ATEN)
    assert out.dtype == ref.dtype
    torch.testing.assert_close(out.float(), ref.float(), rtol=2 * torch.finfo(dtype).eps,
                               atol=2 * torch.finfo(dtype).eps * float(ref.abs().max()))


@pytest.mark.parametrize('dtype', DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize('device', DEVICES[1:])
def test_real_size_v2_atto_under_autocast(device, dtype):
    """A real arch (ConvNeXt-V2 atto, 2x3x256x256 x50, trained-like weights): forward and
    backward under autocast, finite and close to fp32. On a GPU only: on this CPU it takes 25 s
    in bf16 and 110 s in fp16 (torch's CPU fp16 convolutions are reference loops)."""
    torch.manual_seed(0)
    model = ConvNeXt(arch='v2-atto').train().to(device)
    randomise_(model, seed=3)
    x = large_input(device)
    ref_outs, ref_grads = forward_backward(model, x)
    outs, grads = forward_backward(model, x, dtype)
    feature_tol, grad_tol = TOLERANCE[dtype]
    for out, ref in zip(outs, ref_outs):
        assert feature_error(out, ref) < feature_tol
    assert max(gradient_error(grads[n], ref) for n, ref in ref_grads.items()) < grad_tol
