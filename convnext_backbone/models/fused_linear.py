"""The block's MLP (``pwconv1`` -> GELU -> ``pwconv2`` + residual) as fused CPU computations.

All functions take (rows, C) matrices: the NHWC activations of a block, flattened. The GEMMs run
through oneDNN's linear kernel with the bias, the GELU or the residual add in its epilogue
(``torch.ops.mkldnn._linear_pointwise``, the kernels inductor uses), measured 8-25% faster than
aten's MKL sgemm followed by separate elementwise passes on this project's CPU. The autograd
functions compute what autograd would and save what it would, with fewer passes over memory.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .dispatch import SWITCHES, onednn_ok


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           other: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x W^T (+ bias) (+ other)``, no autograd: one oneDNN matmul when it may run, else aten.
    For a contiguous ``x`` (oneDNN copies a strided one; weight gradients, whose operands are
    transposed activations, stay with aten's ``mm``)."""
    if onednn_ok(x):
        if other is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, bias, 'add')
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'none', [], '')
    out = F.linear(x, weight, bias)
    return out if other is None else out.add_(other)


def linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                approximate: str) -> torch.Tensor:
    """``gelu(x W^T + b)`` in one oneDNN matmul (GELU epilogue), no autograd."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'gelu', [], approximate)


def mlp_in_chunks(x, w1, b1, w2, b2, base, approximate):
    """``gelu(x W1^T + b1) W2^T + b2 (+ base)`` in row chunks of about ``SWITCHES.chunk_hidden``
    hidden elements, each chunk two fused matmuls; no autograd (inference). A large hidden
    activation would otherwise be fresh memory, page faults included; a chunk is reused heap
    and still in cache for the second GEMM (measured: ConvNeXt-T stage 0 at 8x224x224, 23 ms
    instead of 31 ms a block; smaller MLPs are faster in one piece)."""
    step = max(64, SWITCHES.chunk_hidden // w1.shape[0])
    outs = []
    for start in range(0, x.shape[0], step):
        h = linear_gelu(x[start:start + step], w1, b1, approximate)
        outs.append(linear(h, w2, b2, None if base is None else base[start:start + step]))
    return torch.cat(outs)


class LinearFn(torch.autograd.Function):
    """``x W^T + b (+ base)`` for training, GEMMs through :func:`linear`."""

    @staticmethod
    def forward(ctx, x, weight, bias, base):
        ctx.save_for_backward(x, weight)
        ctx.has_base = base is not None
        return linear(x, weight, bias, base)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad = grad.contiguous()
        grad_x = linear(grad, weight.t()) if needs[0] else None
        grad_w = grad.t().mm(x) if needs[1] else None
        grad_b = grad.sum(0) if needs[2] else None
        return grad_x, grad_w, grad_b, grad if ctx.has_base and needs[3] else None


class LinearGELUFn(torch.autograd.Function):
    """``gelu(x W^T + b)`` for training, GEMMs through :func:`linear`.

    Saves the input and the pre-activation, as autograd would.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, approximate):
        h = linear(x, weight, bias)
        ctx.save_for_backward(x, weight, h)
        ctx.approximate = approximate
        return F.gelu(h, approximate=approximate)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight, h = ctx.saved_tensors
        grad = torch.ops.aten.gelu_backward(grad, h, approximate=ctx.approximate)
        needs = ctx.needs_input_grad
        grad_x = linear(grad, weight.t()) if needs[0] else None
        grad_w = grad.t().mm(x) if needs[1] else None
        grad_b = grad.sum(0) if needs[2] else None
        return grad_x, grad_w, grad_b, None


class MLPFn(torch.autograd.Function):
    """``gelu(x W1^T + b1) W2^T + b2 (+ base)`` for training (V1 blocks): the whole MLP and the
    residual add as one function.

    Saves ``x``, the pre-activation and the activation, as autograd would. The GELU gradient
    overwrites the hidden gradient, a tensor this backward created (one (rows, 4C) buffer for
    both instead of two).
    """

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, base, approximate):
        h = linear(x, w1, b1)
        a = F.gelu(h, approximate=approximate)
        ctx.save_for_backward(x, w1, w2, h, a)
        ctx.approximate = approximate
        ctx.has_base = base is not None
        return linear(a, w2, b2, base)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, w1, w2, h, a = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad = grad.contiguous()
        grad_w2 = grad.t().mm(a) if needs[3] else None
        grad_b2 = grad.sum(0) if needs[4] else None
        grad_h = linear(grad, w2.t())
        grad_h = torch.ops.aten.gelu_backward.grad_input(grad_h, h, approximate=ctx.approximate,
                                                         grad_input=grad_h)
        grad_w1 = grad_h.t().mm(x) if needs[1] else None
        grad_b1 = grad_h.sum(0) if needs[2] else None
        grad_x = linear(grad_h, w1.t()) if needs[0] else None
        grad_base = grad if ctx.has_base and needs[5] else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2, grad_base, None
