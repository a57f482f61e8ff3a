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

Detectors train this way too, their mmcv ops in fp32 (:func:`fp32_islands`, for the step only):
mmcv 2.1's compiled CPU ops (``RoIAlign``, ``nms``, ...) take fp32 only, so every module of
``mmcv.ops`` in the model runs with autocast off on fp32 inputs (its result handed back in the
dtype it was given, so mmdet's RoI extractors fill their bf16 buffers), and the outputs of the heads
(the model's children other than the backbone, neck and data preprocessor) are cast to fp32,
because the heads' post-processing runs outside their ``forward`` (mmdet's ``predict_by_feat``
and ``loss_by_feat``: box decoding, the RPN's ``nms``, Hungarian matching in scipy) and must
see fp32. The backbone, neck and the heads' own layers (and DETR-style encoders/decoders) stay
in bf16. An op that still meets bf16 without a CPU kernel ends with a
:class:`CPUAutocastError` that says so.
"""
import os
from contextlib import ExitStack, contextmanager
from typing import Iterator, List, Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from .. import cpu_isa
from ..config_schema import Schema, Value
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


#: Modules of these packages run their forward in fp32 under the wrapper's autocast (mmcv's
#: compiled CPU ops take fp32 only).
FP32_MODULE_PACKAGES = ('mmcv.ops',)
#: Children of a detector/segmentor that are not heads (their outputs stay in bf16).
FEATURE_PARTS = ('backbone', 'neck', 'data_preprocessor')


def _cast(value, dtype: torch.dtype):
    """Floating tensors in ``value`` (nested tuples, lists, dicts) as ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        converted = [_cast(v, dtype) for v in value]
        return type(value)(*converted) if hasattr(value, '_fields') else type(value)(converted)
    if isinstance(value, dict):
        return type(value)((k, _cast(v, dtype)) for k, v in value.items())
    return value


def _first_float_dtype(value):
    if isinstance(value, torch.Tensor):
        return value.dtype if value.is_floating_point() else None
    items = value.values() if isinstance(value, dict) else \
        value if isinstance(value, (list, tuple)) else ()
    return next((d for d in map(_first_float_dtype, items) if d is not None), None)


def _fp32_module_hooks(module: nn.Module) -> List:
    """Hooks that run ``module`` with autocast off on fp32 inputs and hand its outputs back in
    the dtype its caller gave (a bf16 feature map in, a bf16 result out)."""
    calls: List[tuple] = []

    def enter(_, args, kwargs):
        context = torch.autocast('cpu', enabled=False)
        context.__enter__()
        calls.append((context, _first_float_dtype((args, kwargs))))
        return _cast(args, torch.float32), _cast(kwargs, torch.float32)

    def leave(_, args, kwargs, output):
        if not calls:
            return None
        context, dtype = calls.pop()
        context.__exit__(None, None, None)
        return _cast(output, dtype) if dtype is not None else None

    return [module.register_forward_pre_hook(enter, with_kwargs=True),
            module.register_forward_hook(leave, with_kwargs=True, always_call=True)]


@contextmanager
def fp32_islands(model: nn.Module) -> Iterator[None]:
    """Inside: the model's ``mmcv.ops`` modules compute in fp32 (and return their caller's
    dtype), its heads return fp32 (see the module docstring); the hooks are removed on exit."""
    while isinstance(getattr(model, 'module', None), nn.Module):  # DDP-like wrappers
        model = model.module
    handles = []
    for module in model.modules():
        if type(module).__module__.startswith(FP32_MODULE_PACKAGES):
            handles += _fp32_module_hooks(module)
    for name, child in model.named_children():
        if name not in FEATURE_PARTS:
            handles.append(child.register_forward_hook(
                lambda m, a, out: _cast(out, torch.float32)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class CPUAutocastError(ValueError):
    """A CPU autocast request this machine or this wrapper cannot honour; says the fix."""


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward pass and losses run under bf16 autocast on the CPU.

    Args:
        dtype: the autocast dtype; only ``'bfloat16'`` (or ``torch.bfloat16``).
        **kwargs: ``OptimWrapper``'s (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    @staticmethod
    def config_schema() -> Schema:
        """The config values this wrapper reads (checked by the tools before anything is
        built); the optimizer's own are the constructor's."""
        return {'dtype': Value("'bfloat16'", lambda value: str(value).replace('torch.', '')
                               in CPU_AUTOCAST_DTYPES, 'bfloat16',
                               'fp16 on the CPU needs loss scaling and has no fast kernels')}

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
        with ExitStack() as stack:
            stack.enter_context(super().optim_context(model))
            stack.enter_context(torch.autocast('cpu', dtype=self.cast_dtype))
            stack.enter_context(fp32_islands(model))
            try:
                yield
            except RuntimeError as error:
                if 'BFloat16' not in str(error):
                    raise
                raise CPUAutocastError(
                    'bf16 autocast on the CPU: an op of this model has no bf16 CPU kernel '
                    f'({str(error).splitlines()[0]}), outside the mmcv ops and head outputs '
                    'this wrapper keeps in fp32. Train this model in fp32 (without '
                    '--amp-dtype bfloat16) or with AmpOptimWrapper on a GPU') from error

    def load_state_dict(self, state_dict: dict) -> None:
        """Resuming a run saved by ``AmpOptimWrapper``: its loss scaler's state is not needed
        (bf16 trains without loss scaling); the optimizer's state loads as usual."""
        state_dict = dict(state_dict)
        state_dict.pop('loss_scaler', None)
        super().load_state_dict(state_dict)
