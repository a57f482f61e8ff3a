"""The fast path's switches: one flag or threshold per technique, module-wide.

They say what the block's fast path *may* do; :func:`convnext_backbone.models.fast_path.block_path`
decides, per call, what it *does*. Tests set them to force a path on tiny inputs, and
``tools/benchmark_backbone.py --ablation`` turns each technique off to measure what it buys.
"""
from dataclasses import dataclass
from typing import Optional

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
    """What the fast path may do (defaults are the measured best on CPU).

    Attributes:
        onednn: oneDNN matmuls with fused bias/GELU/residual-add epilogues (fp32 CPU).
        fold_layer_scale: fold layer scale into ``pwconv2``'s weight when that is less work.
        depthwise_weight_grad: the depthwise convolution's weight gradient as a convolution.
        chunk_elements: inference MLPs whose hidden activation has at least this many elements
            run in row chunks (the activation then stays in cache and in reused heap blocks).
        chunk_hidden: hidden-activation elements per chunk (2 MiB of fp32).
        mkl_gemms: the MLP's GEMMs through aten (MKL) with GELU as a separate pass, instead of
            oneDNN's fused matmuls; ``None``: decided by the instruction set oneDNN runs
            (``fast_path.prefer_mkl_gemms``: MKL below AVX-512).
    """
    onednn: bool = _onednn_linear_available()
    fold_layer_scale: bool = True
    depthwise_weight_grad: bool = True
    chunk_elements: int = _FRESH_PAGES
    chunk_hidden: int = 1 << 19
    mkl_gemms: Optional[bool] = None


SWITCHES = FastPathSwitches()
