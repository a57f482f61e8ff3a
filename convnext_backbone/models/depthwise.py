"""The block's 7x7 depthwise convolution with a faster weight gradient on CPU.

oneDNN's depthwise backward-weights kernel for channels-last fp32 is 5-20x slower than its
forward kernel on CPU (measured with ConvNeXt-T shapes, 7x7 kernels; it dominated the non-GEMM
time of a training step). The weight gradient of a depthwise convolution is itself a depthwise
convolution, one group per (sample, channel), of the input with the output gradient as kernel::

    dW[c, i, j] = sum_n sum_{h,w} x[n, c, h + i - p, w + j - p] * g[n, c, h, w]
                = sum_n conv2d(x[n, c], kernel=g[n, c], padding=p)[i, j]

which the fast forward kernel computes. A dilated convolution (dilation d, padding p = 3d)
reads ``x[.., h + d i - p, w + d j - p]``: its weight gradient is the same convolution with
stride d. Same math; only the summation order differs (relative differences ~1e-6, checked by
tests/models/test_fast_paths.py).
"""
import torch
import torch.nn.functional as F
from torch import nn


def depthwise_weight_grad(x: torch.Tensor, grad: torch.Tensor, padding, weight_shape,
                          dilation=(1, 1)) -> torch.Tensor:
    """Weight gradient of a stride-1 depthwise convolution (dilated by ``dilation``), as
    forward convolutions (with stride ``dilation``).

    Large feature maps: one convolution per sample, input ``x[n]`` (channels-last as it is, no
    copy) with kernel ``grad[n]``, summed. Small ones (where per-call overhead dominates): one
    convolution over all samples at once, samples as groups, which needs NCHW copies of both.
    """
    n, c, h, w = x.shape
    if h * w > 256:
        out = None
        for i in range(n):
            part = F.conv2d(x[i:i + 1], grad[i].unsqueeze(1), padding=padding, stride=dilation,
                            groups=c)
            out = part if out is None else out.add_(part)
        return out.reshape(weight_shape)
    x_groups = x.contiguous().view(1, n * c, h, w)
    g_kernels = grad.contiguous().view(n * c, 1, h, w)
    out = F.conv2d(x_groups, g_kernels, padding=padding, stride=dilation, groups=n * c)
    return out.view(n, c, *weight_shape[2:]).sum(0).unsqueeze(1)


class DepthwiseConv2dCPU(torch.autograd.Function):
    """Depthwise "same" convolution (stride 1, any dilation): forward and input gradient by aten
    (oneDNN), weight gradient by :func:`depthwise_weight_grad`."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation = padding, dilation
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=padding, dilation=dilation,
                        groups=weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        channels = weight.shape[0]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], list(ctx.padding), list(ctx.dilation), False,
                [0, 0], channels, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = depthwise_weight_grad(x, grad, ctx.padding, weight.shape, ctx.dilation)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


def depthwise_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a depthwise, stride-1, "same"-padded (possibly dilated) ``conv`` through
    :class:`DepthwiseConv2dCPU` (fp32 CPU tensors outside autocast; the block's
    :func:`~.fast_path.block_path` decides when)."""
    return DepthwiseConv2dCPU.apply(x, conv.weight, conv.bias, conv.padding, conv.dilation)
