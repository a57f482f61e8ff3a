"""The ConvNeXt block (V1, and V2 with GRN): the official math, computed with fewer passes.

Child names follow the official checkpoints (``dwconv``, ``norm``, ``pwconv1``, ``act``, ``grn``,
``pwconv2``, ``gamma``), so weights load as they are. ``forward_plain`` is the official
computation op by op; ``forward`` (``fast_path=True``) computes the same function to float
rounding (checked by tests/models/test_fast_paths.py and the parity tests against timm and
mmpretrain; docs/benchmarks.md has what each technique buys):

* Layer scale folded into ``pwconv2``: ``gamma * (x W^T + b) = x (gamma W)^T + gamma b``, when
  the (C, 4C) weight is smaller than the (rows, C) output it would otherwise scale (every stage
  but the last at detection sizes); in training autograd then computes ``gamma``'s gradient from
  weight-sized tensors. ``gamma`` stays a parameter of its own (checkpoints, layer decay and
  weight decay are unchanged). Otherwise scale and residual add are one ``addcmul``.
* The residual add inside the ``pwconv2`` GEMM (a fused epilogue); with stochastic depth, mask,
  layer scale and add are one ``addcmul`` (the mask drawn exactly as :func:`drop_path` draws it).
* Inference on CPU: ``pwconv1`` + bias + GELU in one oneDNN matmul, ``pwconv2`` + bias +
  residual in another; large MLPs in row chunks (:mod:`.fused_linear`).
* Training on CPU: the MLP as one autograd function with oneDNN GEMMs, its GELU gradient
  computed in place (:mod:`.fused_linear`); the depthwise convolution's weight gradient as a
  convolution (:mod:`.depthwise`).

GPU, autocast, other dtypes and tracers (TorchScript, FX, ``torch.compile``, ONNX) get the
layer-scale folding and residual fusion only where they are exact in that dtype, through plain
aten ops, or ``forward_plain`` under a tracer.
"""
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import fused_linear
from .depthwise import depthwise_conv
from .dispatch import SWITCHES, autocast_on, cpu_fp32, tracing
from .layers import GRN, DropPath

# ``pwconv2(weight, bias, base)``: ``base + hidden W^T + bias`` for the block's hidden activation
# (``base=None``: no residual); the path chosen for the input decides how it is computed.
Pwconv2 = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


class ConvNeXtBlock(nn.Module):
    """``dwconv`` 7x7 depthwise -> ``norm`` (LN over C) -> ``pwconv1`` C->4C -> ``act`` (exact
    GELU) -> [``grn``] -> ``pwconv2`` 4C->C -> layer scale ``gamma`` -> ``drop_path`` -> + input.

    ``pwconv1``/``pwconv2`` are Linear layers on the NHWC view of the activations, which is a
    copy-free view for the channels-last tensors the backbone feeds its stages.

    Args:
        channels: C.
        drop_path_rate: stochastic depth probability of this block.
        layer_scale_init_value: initial value of the per-channel ``gamma``; ``None`` or <= 0
            means no layer scale (no ``gamma`` parameter), as for ConvNeXt-V2.
        grn: add GRN after the activation (ConvNeXt-V2).
        mlp_ratio: hidden width of the MLP as a multiple of C (4 in the papers).
        fast_path: compute with the fused paths of the module docstring (``False``: op by op).
    """

    def __init__(self, channels: int, drop_path_rate: float = 0.,
                 layer_scale_init_value: Optional[float] = 1e-6, grn: bool = False,
                 mlp_ratio: int = 4, fast_path: bool = True) -> None:
        super().__init__()
        hidden = mlp_ratio * channels
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden) if grn else None
        self.pwconv2 = nn.Linear(hidden, channels)
        if layer_scale_init_value is not None and layer_scale_init_value > 0:
            self.gamma = nn.Parameter(torch.full((channels,), float(layer_scale_init_value)))
        else:
            self.gamma = None
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()
        self.fast_path = fast_path

    def forward_plain(self, x: torch.Tensor) -> torch.Tensor:
        """The official computation, op by op."""
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)  # NCHW -> NHWC view
        x = self.act(self.pwconv1(self.norm(x)))
        if self.grn is not None:
            x = self.grn(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + self.drop_path(x.permute(0, 3, 1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fast_path or tracing():
            return self.forward_plain(x)
        shortcut = x.permute(0, 2, 3, 1)  # NHWC view (free for channels-last x)
        x = self.norm(depthwise_conv(self.dwconv, x).permute(0, 2, 3, 1))
        out = self._pwconv2_residual(self._mlp(x, shortcut.is_contiguous()), shortcut,
                                     x.numel() // x.shape[-1])
        return out.permute(0, 3, 1, 2)

    # ------------------------------------------------------------------ MLP paths
    def _mlp(self, x: torch.Tensor, nhwc_input: bool) -> Pwconv2:
        """Runs the MLP up to ``pwconv2`` on the NHWC ``x`` and returns how ``pwconv2`` (with the
        residual) is computed, on the fastest path that applies. ``nhwc_input``: the block's
        input is channels-last, so the residual can enter oneDNN's epilogue as it is."""
        fusable = (type(self.act) is nn.GELU and self.pwconv1.bias is not None
                   and self.pwconv2.bias is not None and cpu_fp32(x))
        if fusable and not torch.is_grad_enabled() and SWITCHES.onednn and nhwc_input:
            rows = x.numel() // x.shape[-1]
            if self.grn is None and rows * self.pwconv1.out_features >= SWITCHES.chunk_elements:
                return self._mlp_inference_chunked(x)
            return self._mlp_inference(x)
        if fusable and torch.is_grad_enabled():
            return self._mlp_training(x)
        return self._mlp_aten(x)

    def _mlp_inference_chunked(self, x: torch.Tensor) -> Pwconv2:
        x2d = x.reshape(-1, x.shape[-1])

        def pwconv2(weight, bias, base):
            out = fused_linear.mlp_in_chunks(x2d, self.pwconv1.weight, self.pwconv1.bias, weight,
                                             bias, _rows(base), self.act.approximate)
            return out.view(x.shape[:-1] + (weight.shape[0],))
        return pwconv2

    def _mlp_inference(self, x: torch.Tensor) -> Pwconv2:
        h = fused_linear.linear_gelu(x, self.pwconv1.weight, self.pwconv1.bias,
                                     self.act.approximate)
        if self.grn is not None:
            h = self.grn(h)

        def pwconv2(weight, bias, base):
            return fused_linear.linear(h, weight, bias, base)
        return pwconv2

    def _mlp_training(self, x: torch.Tensor) -> Pwconv2:
        x2d = x.reshape(-1, x.shape[-1])
        approximate = self.act.approximate
        if self.grn is None:
            def pwconv2(weight, bias, base):  # the whole MLP as one autograd function
                out = fused_linear.MLPFn.apply(x2d, self.pwconv1.weight, self.pwconv1.bias,
                                               weight, bias, _rows(base), approximate)
                return out.view(x.shape[:-1] + (weight.shape[0],))
            return pwconv2
        h = fused_linear.LinearGELUFn.apply(x2d, self.pwconv1.weight, self.pwconv1.bias,
                                            approximate)
        h = self.grn(h.view(x.shape[:-1] + (h.shape[-1],)))

        def pwconv2(weight, bias, base):
            out = fused_linear.LinearFn.apply(h.reshape(-1, h.shape[-1]), weight, bias,
                                              _rows(base))
            return out.view(x.shape[:-1] + (weight.shape[0],))
        return pwconv2

    def _mlp_aten(self, x: torch.Tensor) -> Pwconv2:
        """GPU, autocast, other dtypes, a custom activation: plain ops."""
        h = self.act(self.pwconv1(x))
        if self.grn is not None:
            h = self.grn(h)

        def pwconv2(weight, bias, base):  # not in place: autocast promotes as the original does
            out = F.linear(h, weight, bias)
            return out if base is None else base + out
        return pwconv2

    # ------------------------------------------------------------------ layer scale, residual
    def _drop_prob(self) -> float:
        """The stochastic depth probability in effect now (0 in eval mode)."""
        if isinstance(self.drop_path, DropPath) and self.drop_path.training:
            return self.drop_path.drop_prob
        return 0.

    def _pwconv2_residual(self, pwconv2: Pwconv2, shortcut: torch.Tensor,
                          rows: int) -> torch.Tensor:
        """``shortcut + drop_path(gamma * pwconv2(hidden))`` on NHWC tensors, fused as far as
        the path allows."""
        weight, bias, gamma = self.pwconv2.weight, self.pwconv2.bias, self.gamma
        if (gamma is not None and SWITCHES.fold_layer_scale and rows >= self.pwconv2.in_features
                and not autocast_on(shortcut) and shortcut.dtype != torch.float16):
            # (never in fp16: gamma W underflows there for small layer-scale values)
            weight, bias, gamma = weight * gamma[:, None], bias * gamma, None
        drop_prob = self._drop_prob()
        if gamma is None and drop_prob == 0.:  # the residual add inside the GEMM
            return pwconv2(weight, bias, shortcut)
        x = pwconv2(weight, bias, None)
        scale = gamma
        if drop_prob > 0.:  # the per-sample mask exactly as drop_path() draws it
            keep_prob = 1. - drop_prob
            mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep_prob)
            mask = mask.div_(keep_prob)
            scale = mask if gamma is None else mask * gamma
        return torch.addcmul(shortcut, x, scale)


def _rows(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """An NHWC tensor as (rows, C), or None."""
    return None if t is None else t.reshape(-1, t.shape[-1])
