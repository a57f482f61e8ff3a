"""When the block's fast path may use its CPU kernels, and the switches that turn each off.

The fused kernels (oneDNN GEMMs with epilogues, custom autograd functions) are for fp32 CPU
tensors outside autocast, and never for tracers: TorchScript, FX and dynamo (``torch.compile``,
``torch.export``, ONNX) must see the plain aten graph they know how to optimise and export.
``SWITCHES`` holds one flag or threshold per technique so that tests can force a path on small
inputs and ``tools/benchmark_backbone.py --ablation`` can measure what each one buys.
"""
from dataclasses import dataclass

import torch


def _onednn_linear_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                                '_linear_pointwise')
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


# Sizes in elements. 1 << 23 fp32 = 32 MiB: glibc serves blocks that large with fresh pages
# from the OS, whose page faults can cost as much as the GEMM that fills them.
_FRESH_PAGES = 1 << 23


@dataclass
class FastPathSwitches:
    """What the fast path may do (module-wide; defaults are the measured best on CPU).

    Attributes:
        onednn: oneDNN matmuls with fused bias/GELU/residual-add epilogues (fp32 CPU).
        fold_layer_scale: fold layer scale into ``pwconv2``'s weight when that is less work.
        depthwise_weight_grad: the depthwise convolution's weight gradient as a convolution.
        chunk_elements: inference MLPs whose hidden activation has at least this many elements
            run in row chunks (the activation then stays in cache and in reused heap blocks).
        chunk_hidden: hidden-activation elements per chunk (2 MiB of fp32).
    """
    onednn: bool = _onednn_linear_available()
    fold_layer_scale: bool = True
    depthwise_weight_grad: bool = True
    chunk_elements: int = _FRESH_PAGES
    chunk_hidden: int = 1 << 19


SWITCHES = FastPathSwitches()


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


def onednn_ok(x: torch.Tensor) -> bool:
    """oneDNN's fused linear kernels may take ``x`` (switch on, fp32 CPU)."""
    return SWITCHES.onednn and x.dtype == torch.float32 and x.device.type == 'cpu'
