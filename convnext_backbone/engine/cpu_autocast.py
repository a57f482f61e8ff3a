"""Mixed precision on a machine without a GPU: bf16 autocast on the CPU, as an optim wrapper.

mmengine's ``AmpOptimWrapper`` asserts a GPU (it is built around CUDA's fp16 loss scaling). On
the CPU, bf16 needs no loss scaling: it has fp32's exponent range, so gradients neither
underflow nor overflow where fp32's would not. :class:`CPUAutocastOptimWrapper` is mmengine's
plain ``OptimWrapper`` whose ``optim_context`` (the part of ``train_step`` that runs the data
preprocessor, the forward pass and the losses) runs under ``torch.autocast('cpu',
dtype=torch.bfloat16)``; backward and the optimizer step stay as they are (fp32 parameters,
gradients and optimizer state). A config names it
(``optim_wrapper=dict(type='convnext_backbone.CPUAutocastOptimWrapper', ...)``), or
``tools/train.py --amp-dtype bfloat16`` chooses it on a machine without CUDA.

Validation and testing run in fp32 (mmengine's loops autocast only when told ``fp16=True``).
Models whose ops have no bf16 CPU kernel cannot train this way: mmcv 2.1's CPU ``nms`` and
``RoIAlign`` (two-stage detectors such as Mask R-CNN) take fp32 only; such a step ends with a
:class:`CPUAutocastError` that says so (segmentors, e.g. UperNet, train).
"""
import os
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from .. import cpu_isa
from ..registry import OPTIM_WRAPPERS

#: Autocast dtypes this wrapper runs on the CPU (fp16 would need loss scaling and has no fast
#: CPU kernels: train in fp32 or bf16 there).
CPU_AUTOCAST_DTYPES = ('bfloat16',)


def cpu_supports_bf16() -> bool:
    """oneDNN runs bf16 kernels here, as torch asks oneDNN (AVX-512 F/BW/VL/DQ, or AVX2 with
    AVX-NE-CONVERT, within ``ONEDNN_MAX_CPU_ISA``): bf16 matmuls and convolutions run in
    oneDNN, not emulated element by element. Native bf16 arithmetic needs AVX512-BF16 (Intel
    Cooper Lake, AMD Zen 4) or AMX (Intel Sapphire Rapids); elsewhere oneDNN converts around
    fp32 arithmetic (:func:`convnext_backbone.cpu_isa.bf16_support`)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return False


class CPUAutocastError(ValueError):
    """A CPU autocast request this machine or this wrapper cannot honour; says the fix."""


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward pass and losses run under bf16 autocast on the CPU.

    Args:
        dtype: the autocast dtype; only ``'bfloat16'`` (or ``torch.bfloat16``).
        **kwargs: ``OptimWrapper``'s (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        name = str(dtype).replace('torch.', '')
        if name not in CPU_AUTOCAST_DTYPES:
            raise CPUAutocastError(
                f"CPUAutocastOptimWrapper: dtype {dtype!r} is not supported; use 'bfloat16' "
                '(fp16 on the CPU needs loss scaling and has no fast kernels)')
        if not cpu_supports_bf16():
            why = cpu_isa.bf16_absent_because(cpu_isa.read_cpuinfo().flags, os.environ)
            raise CPUAutocastError(
                f'CPUAutocastOptimWrapper: this CPU has no bf16 support in oneDNN ({why}); '
                'train in fp32 with OptimWrapper instead')
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, name)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """mmengine's context (gradient accumulation) plus bf16 autocast on the CPU."""
        device = next((p.device for p in model.parameters()), torch.device('cpu'))
        if device.type != 'cpu':
            raise CPUAutocastError(
                f'CPUAutocastOptimWrapper autocasts on the CPU, but the model is on {device}; '
                "use AmpOptimWrapper (optim_wrapper.type='AmpOptimWrapper', dtype='bfloat16') "
                'on a GPU')
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            try:
                yield
            except RuntimeError as error:
                if 'BFloat16' not in str(error):
                    raise
                raise CPUAutocastError(
                    'bf16 autocast on the CPU: an op of this model has no bf16 CPU kernel '
                    f'({str(error).splitlines()[0]}); mmcv\'s CPU nms/RoIAlign (two-stage '
                    'detectors such as Mask R-CNN) take fp32 only. Train this model in fp32 '
                    '(without --amp-dtype bfloat16) or with AmpOptimWrapper on a GPU') from error

    def load_state_dict(self, state_dict: dict) -> None:
        """Resuming a run saved by ``AmpOptimWrapper``: its loss scaler's state is not needed
        (bf16 trains without loss scaling); the optimizer's state loads as usual."""
        state_dict = dict(state_dict)
        state_dict.pop('loss_scaler', None)
        super().load_state_dict(state_dict)
