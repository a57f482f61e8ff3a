"""Building blocks of ConvNeXt: channels-first LayerNorm, GRN, drop path and the stride-1
downsample convolution of dilated stages (the block: block.py).

Speed note (the channels-last path): the backbone feeds its stages tensors in
``torch.channels_last`` memory format. For such an NCHW tensor, ``x.permute(0, 2, 3, 1)`` is an
already-contiguous NHWC view, so the block's LayerNorm, Linear layers and GRN run on contiguous
NHWC memory with no copy, and permuting back is free. The math is exactly the official one; the
memory layout only changes how fast it runs. Every module here also accepts ordinary contiguous
NCHW input (PyTorch then copies where it has to), with the same results.
"""
import torch
import torch.nn.functional as F
from torch import nn

#: Floating dtypes whose normalisation statistics are computed in fp32.
LOW_PRECISION = (torch.float16, torch.bfloat16)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dim of an NCHW tensor (the official "channels_first" LN).

    Implemented as permute -> ``F.layer_norm`` over the last dim -> permute back, which is
    copy-free for channels-last input (the official code computes mean/var by hand instead,
    which costs several full-size temporaries). Parameters ``weight``/``bias`` have shape (C,),
    so official checkpoints load as they are.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class SamePaddedConv2d(nn.Conv2d):
    """A stride-1 (dilated) convolution zero-padded to keep the size: ``total = dilation *
    (kernel - 1)`` rows and columns, ``total // 2`` before and the rest after (PyTorch's
    ``padding='same'`` and timm's 'SAME' padding, written out: PyTorch warns on every process
    that its even-kernel case copies the input, which this does too). The 2x2 downsample
    convolution of a dilated stage (``ConvNeXt(output_stride=...)``); parameters ``weight``,
    ``bias`` as ``nn.Conv2d``, so checkpoints load unchanged. Exports as ONNX Pad + Conv.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=1, dilation=dilation)
        total = dilation * (kernel_size - 1)
        self.same_padding = (total // 2, total - total // 2) * 2  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.same_padding))

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, same_padding={self.same_padding}'


class GRN(nn.Module):
    """Global Response Normalization of ConvNeXt-V2, on channels-last (N, H, W, C) input.

    ``Gx = ||x||_2`` over the spatial dims (H, W) per sample and channel;
    ``Nx = Gx / (mean_C(Gx) + eps)``; ``out = gamma * (x * Nx) + beta + x``.
    Computed as ``x * (1 + gamma * Nx) + beta``: ``1 + gamma * Nx`` is only (N, 1, 1, C), so the
    full-size work is a single fused multiply-add instead of three passes. ``gamma`` and ``beta``
    have shape (C,) and start at zero (the block starts as if GRN were absent), as in the paper.

    The statistics ``Gx`` and ``Nx`` are computed and kept in fp32 whatever the input's dtype:
    under fp16 autocast a spatial L2 norm of large activations exceeds fp16's range (65504) and
    ``Nx`` turns into inf/inf = NaN; in bf16 it loses all but 8 bits. (CUDA autocast runs the
    hosts' ``torch.norm`` in fp32 for the same reason; CPU autocast does not.) The result has
    the dtype ``x`` and ``gamma`` promote to, as the official ``gamma * (x * Nx) + beta + x``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(num_channels))
        self.beta = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_precision = x.dtype in LOW_PRECISION
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True,
                                      dtype=torch.float32 if low_precision else None)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        scale = 1 + self.gamma * nx
        if low_precision:
            scale = scale.to(torch.result_type(x, self.gamma))
        return torch.addcmul(self.beta, x, scale)

    def extra_repr(self) -> str:
        return f'{self.gamma.shape[0]}, eps={self.eps}'


def drop_path(x: torch.Tensor, drop_prob: float = 0., training: bool = False) -> torch.Tensor:
    """Stochastic depth: zero the whole residual branch for random samples of the batch.

    Kept samples are scaled by ``1 / (1 - drop_prob)`` so the expectation is unchanged
    (the behaviour of timm's ``DropPath``, which the official code uses). Identity in eval mode.
    """
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1. - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep_prob)
    return x * mask.div_(keep_prob)


class DropPath(nn.Module):
    """Module wrapper of :func:`drop_path` (per-sample stochastic depth)."""

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'
