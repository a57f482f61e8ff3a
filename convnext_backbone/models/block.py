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
* Training on CPU: the MLP as one autograd function, its GELU gradient computed in place
  (:mod:`.fused_linear`); the depthwise convolution's weight gradient as a convolution
  (:mod:`.depthwise`).

Which of these runs for an input is decided in one place, :func:`.fast_path.block_path`; this
module only carries out the path it names (GPU, autocast, other dtypes: plain aten ops with the
layer-scale folding and residual fusion where they are exact; tracers: ``forward_plain``).
"""
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import fast_path, fused_linear
from .depthwise import depthwise_conv
from .fast_path import BlockPath, block_path
from .layers import GRN, DropPath
from .switches import SWITCHES

# ``pwconv2(weight, bias, base)``: ``base + hidden W^T + bias`` for the block's hidden activation
# (``base=None``: no residual); the path chosen for the input decides how it is computed.
Pwconv2 = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


class ConvNeXtBlock(nn.Module):
    """``dwconv`` 7x7 depthwise (dilated or not) -> ``norm`` (LN over C) -> ``pwconv1`` C->4C ->
    ``act`` (exact GELU) -> [``grn``] -> ``pwconv2`` 4C->C -> layer scale ``gamma`` ->
    ``drop_path`` -> + input.

    ``pwconv1``/``pwconv2`` are Linear layers on the NHWC view of the activations, which is a
    copy-free view for the channels-last tensors the backbone feeds its stages.

    Args:
        channels: C.
        drop_path_rate: stochastic depth probability of this block.
        layer_scale_init_value: initial value of the per-channel ``gamma``; ``None`` or <= 0
            means no layer scale (no ``gamma`` parameter), as for ConvNeXt-V2.
        grn: add GRN after the activation (ConvNeXt-V2).
        mlp_ratio: hidden width of the MLP as a multiple of C (4 in the papers).
        dilation: dilation of ``dwconv`` (padded to keep the size): 1 in the papers; the
            backbone's ``output_stride`` below 32 dilates its last stages.
        fast_path: compute with the fused paths of the module docstring (``False``: op by op).
    """

    def __init__(self, channels: int, drop_path_rate: float = 0.,
                 layer_scale_init_value: Optional[float] = 1e-6, grn: bool = False,
                 mlp_ratio: int = 4, dilation: int = 1, fast_path: bool = True) -> None:
        super().__init__()
        hidden = mlp_ratio * channels
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=7, padding=3 * dilation,
                                dilation=dilation, groups=channels)
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
        path = block_path(self, x)
        if path.name == fast_path.PLAIN:
            return self.forward_plain(x)
        shortcut = x.permute(0, 2, 3, 1)  # NHWC view (free for channels-last x)
        x = depthwise_conv(self.dwconv, x) if path.depthwise_weight_grad else self.dwconv(x)
        x = self.norm(x.permute(0, 2, 3, 1))
        pwconv2 = getattr(self, _MLP[path.name])(x, path)
        return self._pwconv2_residual(pwconv2, shortcut, path.fold_layer_scale).permute(0, 3, 1, 2)

    # ------------------------------------------------------------------ MLP paths
    # Each runs the MLP up to ``pwconv2`` on the NHWC ``x`` and returns how ``pwconv2`` (with
    # the residual) is computed on that path.
    def _mlp_inference_chunked(self, x: torch.Tensor, path: BlockPath) -> Pwconv2:
        x2d = x.reshape(-1, x.shape[-1])
        mlp = (fused_linear.mkl_mlp_in_chunks if path.name == fast_path.MKL_INFERENCE_CHUNKED
               else fused_linear.onednn_mlp_in_chunks)

        def pwconv2(weight, bias, base):
            out = mlp(x2d, self.pwconv1.weight, self.pwconv1.bias, weight, bias, _rows(base),
                      self.act.approximate, SWITCHES.chunk_hidden)
            return out.view(x.shape[:-1] + (weight.shape[0],))
        return pwconv2

    def _mlp_inference(self, x: torch.Tensor, path: BlockPath) -> Pwconv2:
        h = fused_linear.onednn_linear_gelu(x, self.pwconv1.weight, self.pwconv1.bias,
                                            self.act.approximate)
        if self.grn is not None:
            h = self.grn(h)

        def pwconv2(weight, bias, base):
            return fused_linear.onednn_linear(h, weight, bias, base)
        return pwconv2

    def _mlp_mkl_inference(self, x: torch.Tensor, path: BlockPath) -> Pwconv2:
        h = fused_linear.aten_linear_gelu(x.reshape(-1, x.shape[-1]), self.pwconv1.weight,
                                          self.pwconv1.bias, self.act.approximate)
        if self.grn is not None:
            h = self.grn(h.view(x.shape[:-1] + (h.shape[-1],))).reshape(h.shape)

        def pwconv2(weight, bias, base):
            out = fused_linear.aten_linear(h, weight, bias, _rows(base))
            return out.view(x.shape[:-1] + (weight.shape[0],))
        return pwconv2

    def _mlp_training(self, x: torch.Tensor, path: BlockPath) -> Pwconv2:
        x2d = x.reshape(-1, x.shape[-1])
        approximate, onednn = self.act.approximate, path.onednn_gemms
        if self.grn is None:
            def pwconv2(weight, bias, base):  # the whole MLP as one autograd function
                out = fused_linear.MLPFn.apply(x2d, self.pwconv1.weight, self.pwconv1.bias,
                                               weight, bias, _rows(base), approximate, onednn)
                return out.view(x.shape[:-1] + (weight.shape[0],))
            return pwconv2
        h = fused_linear.LinearGELUFn.apply(x2d, self.pwconv1.weight, self.pwconv1.bias,
                                            approximate, onednn)
        h = self.grn(h.view(x.shape[:-1] + (h.shape[-1],)))

        def pwconv2(weight, bias, base):
            out = fused_linear.LinearFn.apply(h.reshape(-1, h.shape[-1]), weight, bias,
                                              _rows(base), onednn)
            return out.view(x.shape[:-1] + (weight.shape[0],))
        return pwconv2

    def _mlp_aten(self, x: torch.Tensor, path: BlockPath) -> Pwconv2:
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
                          fold_layer_scale: bool) -> torch.Tensor:
        """``shortcut + drop_path(gamma * pwconv2(hidden))`` on NHWC tensors, fused as far as
        the path allows (``fold_layer_scale``: ``gamma`` into ``pwconv2``'s weight and bias)."""
        weight, bias, gamma = self.pwconv2.weight, self.pwconv2.bias, self.gamma
        if fold_layer_scale:
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


# the block's method for each MLP path of fast_path.block_path
_MLP = {fast_path.ONEDNN_INFERENCE: '_mlp_inference',
        fast_path.ONEDNN_INFERENCE_CHUNKED: '_mlp_inference_chunked',
        fast_path.MKL_INFERENCE: '_mlp_mkl_inference',
        fast_path.MKL_INFERENCE_CHUNKED: '_mlp_inference_chunked',
        fast_path.CPU_TRAINING: '_mlp_training',
        fast_path.ATEN: '_mlp_aten'}


def _rows(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """An NHWC tensor as (rows, C), or None."""
    return None if t is None else t.reshape(-1, t.shape[-1])
