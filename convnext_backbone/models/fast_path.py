"""Which computation a ConvNeXt block runs for a given input: the one place that decides.

:func:`block_path` looks at the block (``fast_path`` flag, activation, GRN, layer scale), the
input (device, dtype, memory format, size), the autograd and autocast state, tracers, the CPU's
instruction set and :data:`~.switches.SWITCHES`, and returns a :class:`BlockPath`. The block
runs what it names; the kernels below (:mod:`.fused_linear`, :mod:`.depthwise`) take no
decisions and have no fallbacks of their own. Tests and ``tools/benchmark_backbone.py
--ablation`` ask this function which path a case takes.

Path names (``BlockPath.name``), i.e. how the MLP and the residual are computed:

* ``plain``: ``forward_plain``, the official computation op by op (``fast_path=False``, or a
  tracer: TorchScript, FX and dynamo must see the aten graph they know how to optimise/export).
* ``onednn_inference``: no gradients, fp32 CPU, channels-last input: ``pwconv1`` + bias + GELU
  in one oneDNN matmul, ``pwconv2`` + bias + residual in another.
* ``onednn_inference_chunked``: the same, in row chunks, for MLPs whose hidden activation would
  be large fresh memory (V1 blocks only: GRN needs the whole activation).
* ``mkl_inference`` / ``mkl_inference_chunked``: the same with aten's (MKL) GEMMs, GELU in
  place as a separate pass, the residual added by the second GEMM (``addmm_``), the chunks
  written into reused buffers: where oneDNN's fp32 matmul and its GELU epilogue are the slower
  choice (AVX2 CPUs, measured; see :func:`prefer_mkl_gemms`).
* ``cpu_training``: gradients needed, fp32 CPU: the MLP as one autograd function (or two, with
  GRN) whose GEMMs are oneDNN's (``BlockPath.onednn_gemms``) or aten's.
* ``aten``: everything else (GPU, autocast, other dtypes, channels-first input without
  gradients, a custom activation): plain aten ops, with the layer-scale folding and residual
  fusion where they are exact in that dtype.

Orthogonal to the name: ``fold_layer_scale`` (``gamma`` folded into ``pwconv2``'s weight, when
the (C, 4C) weight is smaller than the (rows, C) output; never under autocast or in fp16, where
``gamma W`` underflows for small layer-scale values) and ``depthwise_weight_grad`` (the
depthwise convolution through :class:`~.depthwise.DepthwiseConv2dCPU`, whose weight gradient is
a forward convolution).
"""
import functools
import os
from typing import NamedTuple

import torch
from torch import nn

from .. import cpu_isa
from .switches import SWITCHES

PLAIN = 'plain'
ONEDNN_INFERENCE = 'onednn_inference'
ONEDNN_INFERENCE_CHUNKED = 'onednn_inference_chunked'
MKL_INFERENCE = 'mkl_inference'
MKL_INFERENCE_CHUNKED = 'mkl_inference_chunked'
CPU_TRAINING = 'cpu_training'
ATEN = 'aten'
PATH_NAMES = (PLAIN, ONEDNN_INFERENCE, ONEDNN_INFERENCE_CHUNKED, MKL_INFERENCE,
              MKL_INFERENCE_CHUNKED, CPU_TRAINING, ATEN)


class BlockPath(NamedTuple):
    """A block's computation for one call: ``name`` (one of :data:`PATH_NAMES`) and the choices
    that apply within it."""
    name: str
    fold_layer_scale: bool = False
    depthwise_weight_grad: bool = False
    onednn_gemms: bool = False  # cpu_training: the autograd functions' GEMMs through oneDNN


def tracing() -> bool:
    """True while TorchScript, FX or dynamo traces the model."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    if torch.compiler.is_compiling():
        return True
    try:
        from torch.fx._symbolic_trace import is_fx_symbolic_tracing
    except ImportError:  # pragma: no cover
        return False
    return is_fx_symbolic_tracing()


def autocast_on(x: torch.Tensor) -> bool:
    """Autocast is enabled for ``x``'s device type."""
    try:
        return torch.is_autocast_enabled(x.device.type)
    except TypeError:  # pragma: no cover - older torch
        return torch.is_autocast_enabled()


def cpu_fp32(x: torch.Tensor) -> bool:
    """fp32 CPU tensor, no autocast: where the custom kernels and autograd functions apply (their
    backward passes run outside autocast and assume the forward's dtypes)."""
    return x.device.type == 'cpu' and x.dtype == torch.float32 and not autocast_on(x)


@functools.lru_cache(maxsize=None)
def onednn_isa_below_avx512() -> bool:
    """oneDNN runs without AVX-512 here: the CPU lacks AVX-512 F+BW+VL+DQ, or
    ``ONEDNN_MAX_CPU_ISA``/``DNNL_MAX_CPU_ISA`` caps oneDNN below it. Collected here (the CPU's
    flags, ATen's capability where the flags cannot be read, the environment; read once, as
    oneDNN reads its cap once, when it first runs), decided by
    :func:`convnext_backbone.cpu_isa.onednn_below_avx512` (tested on every kind of CPU)."""
    return cpu_isa.onednn_below_avx512(cpu_isa.read_cpuinfo().flags,
                                       torch.backends.cpu.get_cpu_capability(), os.environ)


def prefer_mkl_gemms() -> bool:
    """The MLP's GEMMs through aten (MKL) instead of oneDNN: ``SWITCHES.mkl_gemms`` when set,
    else the measured default: yes where oneDNN runs below AVX-512. There (AVX2), oneDNN's GELU
    epilogue costs about twice a separate GELU pass, and its matmuls with a transposed weight
    (the training backward) are much slower than MKL's; with AVX-512 the fused matmuls win
    (docs/benchmarks.md, per-op profiles on both)."""
    if SWITCHES.mkl_gemms is not None:
        return SWITCHES.mkl_gemms
    return onednn_isa_below_avx512()


def _needs_grad(block: nn.Module, x: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in block.parameters()))


def block_path(block: nn.Module, x: torch.Tensor) -> BlockPath:
    """The computation :class:`~.block.ConvNeXtBlock` ``block`` runs for the NCHW input ``x``
    now (see the module docstring for the names)."""
    if not block.fast_path or tracing():
        return BlockPath(PLAIN)
    needs_grad = _needs_grad(block, x)
    fp32 = cpu_fp32(x) and block.pwconv1.weight.dtype == torch.float32
    channels, hidden = block.pwconv1.in_features, block.pwconv1.out_features
    rows = x.numel() // channels
    fold = (block.gamma is not None and SWITCHES.fold_layer_scale and rows >= hidden
            and not autocast_on(x) and x.dtype != torch.float16)
    dw_grad = (SWITCHES.depthwise_weight_grad and needs_grad and fp32
               and (x.requires_grad or block.dwconv.weight.requires_grad))
    fusable = (fp32 and type(block.act) is nn.GELU and block.pwconv1.bias is not None
               and block.pwconv2.bias is not None)
    nhwc_input = x.permute(0, 2, 3, 1).is_contiguous()
    mkl = prefer_mkl_gemms()
    if fusable and needs_grad:
        name = CPU_TRAINING
    elif fusable and nhwc_input and SWITCHES.onednn:  # onednn off: the fused MLPs all off
        chunked = block.grn is None and rows * hidden >= SWITCHES.chunk_elements
        if mkl:
            name = MKL_INFERENCE_CHUNKED if chunked else MKL_INFERENCE
        else:
            name = ONEDNN_INFERENCE_CHUNKED if chunked else ONEDNN_INFERENCE
    else:
        name = ATEN
    return BlockPath(name, fold, dw_grad, name == CPU_TRAINING and SWITCHES.onednn and not mkl)
