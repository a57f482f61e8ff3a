"""The block's MLP (``pwconv1`` -> GELU -> ``pwconv2`` + residual) as fused CPU computations.

All functions take (rows, C) matrices: the NHWC activations of a block, flattened. They compute
what they are named for and nothing else: which of them runs is decided by
:func:`~.fast_path.block_path`. ``onednn_*`` run oneDNN's linear kernel with the bias, the GELU or
the residual add in its epilogue (``torch.ops.mkldnn._linear_pointwise``, the kernels inductor
uses); ``aten_*`` and :func:`mkl_mlp_in_chunks` run aten's GEMMs (``addmm``: MKL's sgemm on x86)
with GELU as a separate in-place pass, which is faster where oneDNN's fp32 matmul and its GELU
epilogue are slow (AVX2 CPUs, measured: docs/benchmarks.md). The autograd functions compute what
autograd would and save what it would, with fewer passes over memory; their ``onednn`` argument
says whose GEMMs they run."""
from typing import Optional

import torch
import torch.nn.functional as F


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                  other: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x W^T (+ bias) (+ other)`` in one oneDNN matmul, no autograd. For a contiguous ``x``
    (oneDNN copies a strided one; weight gradients, whose operands are transposed activations,
    stay with aten's ``mm``)."""
    if other is not None:
        return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, bias, 'add')
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'none', [], '')


def onednn_linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       approximate: str) -> torch.Tensor:
    """``gelu(x W^T + b)`` in one oneDNN matmul (GELU epilogue), no autograd."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'gelu', [], approximate)


def aten_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                other: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x W^T (+ bias) (+ other)`` with aten's GEMM, no autograd: ``other + bias`` written
    first, then the GEMM accumulates into it (``addmm_``, beta 1): no separate add pass."""
    if other is None:
        return x.mm(weight.t()) if bias is None else torch.addmm(bias, x, weight.t())
    out = other.clone() if bias is None else torch.add(other, bias)
    return out.addmm_(x, weight.t())


def aten_linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     approximate: str) -> torch.Tensor:
    """``gelu(x W^T + b)``: aten's GEMM, then GELU in place; no autograd."""
    return torch.ops.aten.gelu_(torch.addmm(bias, x, weight.t()), approximate=approximate)


def _chunk_rows(hidden: int, chunk_hidden: int) -> int:
    return max(64, chunk_hidden // hidden)


def onednn_mlp_in_chunks(x, w1, b1, w2, b2, base, approximate, chunk_hidden):
    """``gelu(x W1^T + b1) W2^T + b2 (+ base)`` in row chunks of about ``chunk_hidden`` hidden
    elements, each chunk two fused oneDNN matmuls; no autograd (inference). A large hidden
    activation would otherwise be fresh memory, page faults included; a chunk is reused heap
    and still in cache for the second GEMM (measured: ConvNeXt-T stage 0 at 8x224x224, 23 ms
    instead of 31 ms a block on AVX-512; smaller MLPs are faster in one piece)."""
    step = _chunk_rows(w1.shape[0], chunk_hidden)
    outs = []
    for start in range(0, x.shape[0], step):
        h = onednn_linear_gelu(x[start:start + step], w1, b1, approximate)
        outs.append(onednn_linear(h, w2, b2, None if base is None else base[start:start + step]))
    return torch.cat(outs)


def mkl_mlp_in_chunks(x, w1, b1, w2, b2, base, approximate, chunk_hidden):
    """The same as :func:`onednn_mlp_in_chunks` with aten's GEMMs (``addmm``, MKL's sgemm):
    each chunk's hidden activation is written into one reused buffer, GELU applied in place
    while it is in cache, and ``pwconv2`` accumulates into the output rows (``base + b2``
    first, then ``+= h W2^T`` in the GEMM itself); no autograd (inference)."""
    rows, step = x.shape[0], _chunk_rows(w1.shape[0], chunk_hidden)
    out = x.new_empty((rows, w2.shape[0]))
    buffer = x.new_empty((min(step, rows), w1.shape[0]))
    w1t, w2t = w1.t(), w2.t()
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        h, o = buffer[:stop - start], out[start:stop]
        torch.addmm(b1, x[start:stop], w1t, out=h)
        torch.ops.aten.gelu.out(h, approximate=approximate, out=h)
        if base is None:
            torch.addmm(b2, h, w2t, out=o)
        else:
            torch.add(base[start:stop], b2, out=o)
            o.addmm_(h, w2t)
    return out


def _linear(onednn: bool):
    return onednn_linear if onednn else aten_linear


class LinearFn(torch.autograd.Function):
    """``x W^T + b (+ base)`` for training."""

    @staticmethod
    def forward(ctx, x, weight, bias, base, onednn):
        ctx.save_for_backward(x, weight)
        ctx.has_base, ctx.onednn = base is not None, onednn
        return _linear(onednn)(x, weight, bias, base)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad = grad.contiguous()
        grad_x = _linear(ctx.onednn)(grad, weight.t()) if needs[0] else None
        grad_w = grad.t().mm(x) if needs[1] else None
        grad_b = grad.sum(0) if needs[2] else None
        return grad_x, grad_w, grad_b, grad if ctx.has_base and needs[3] else None, None


class LinearGELUFn(torch.autograd.Function):
    """``gelu(x W^T + b)`` for training. Saves the input and the pre-activation, as autograd
    would."""

    @staticmethod
    def forward(ctx, x, weight, bias, approximate, onednn):
        h = _linear(onednn)(x, weight, bias)
        ctx.save_for_backward(x, weight, h)
        ctx.approximate, ctx.onednn = approximate, onednn
        return F.gelu(h, approximate=approximate)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight, h = ctx.saved_tensors
        grad = torch.ops.aten.gelu_backward(grad, h, approximate=ctx.approximate)
        needs = ctx.needs_input_grad
        grad_x = _linear(ctx.onednn)(grad, weight.t()) if needs[0] else None
        grad_w = grad.t().mm(x) if needs[1] else None
        grad_b = grad.sum(0) if needs[2] else None
        return grad_x, grad_w, grad_b, None, None


class MLPFn(torch.autograd.Function):
    """``gelu(x W1^T + b1) W2^T + b2 (+ base)`` for training (V1 blocks): the whole MLP and the
    residual add as one function.

    Saves ``x``, the pre-activation and the activation, as autograd would. The GELU gradient
    overwrites the hidden gradient, a tensor this backward created (one (rows, 4C) buffer for
    both instead of two).
    """

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, base, approximate, onednn):
        linear = _linear(onednn)
        h = linear(x, w1, b1)
        a = F.gelu(h, approximate=approximate)
        ctx.save_for_backward(x, w1, w2, h, a)
        ctx.approximate, ctx.onednn = approximate, onednn
        ctx.has_base = base is not None
        return linear(a, w2, b2, base)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, w1, w2, h, a = ctx.saved_tensors
        needs = ctx.needs_input_grad
        linear = _linear(ctx.onednn)
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
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2, grad_base, None, None
