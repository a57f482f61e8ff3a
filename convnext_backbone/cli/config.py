"""How our tools prepare a config before mmengine's Runner takes it.

One shape for detection and segmentation: load the config (with ``--cfg-options``), choose the
work dir, make AMP configs run on a machine without a GPU (bf16 autocast on the CPU when asked
for and supported, else fp32; with a notice, instead of mmengine's assertion), set what
``--resume`` and ``--show-dir`` ask for, and flush denormals on CPU.

Options that mmdet's and mmseg's own ``tools/train.py`` / ``tools/test.py`` also have mean what
they mean there (``--work-dir``, ``--show-dir``, ``--cfg-options``; compared with the hosts'
tools in tests/cli/test_host_conventions.py).
"""
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..checkpoint import check_checkpoint_file, trust_checkpoint
from ..engine.cpu_autocast import cpu_supports_bf16


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with a clear error for a missing file, then ``--cfg-options``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path} does not exist. Configs live in configs/, '
                                'e.g. configs/maskrcnn_convnext_t_coco.py.')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    """Command line > config > ``work_dirs/<config name>`` in the current folder (mmdet's and
    mmseg's rule)."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


def draw_predictions(cfg: Config, show_dir: str) -> None:
    """``--show-dir DIR``: draw every test image's predictions into DIR, where mmdet's and
    mmseg's own ``tools/test.py`` put them:

    * detection (mmdet's ``DetVisualizationHook.test_out_dir``): a relative DIR goes under the
      run's timestamped log folder, ``WORK_DIR/TIMESTAMP/DIR/<image file name>``; an absolute
      DIR is used as it is;
    * segmentation (mmseg: the visualizer's ``save_dir``): DIR relative to the current folder,
      the images in ``DIR/vis_data/vis_image/``.

    One difference, on purpose: mmseg's hook draws one test image in ``interval`` (50 in its
    runtime); ours draws every one (``interval=1``), as mmdet's does at test time.
    """
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a visualization hook in default_hooks '
                         "(e.g. dict(type='DetVisualizationHook')).")
    hook.update(draw=True, interval=1)
    if cfg.default_scope == 'mmdet':
        hook.test_out_dir = show_dir
    else:
        cfg.visualizer.save_dir = show_dir


def enable_amp(cfg: Config, dtype: Optional[str] = None) -> None:
    """``--amp``: mixed precision through mmengine's AmpOptimWrapper, dynamic loss scale;
    ``--amp-dtype``: its autocast ``dtype`` ('float16' or 'bfloat16')."""
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if dtype is not None:
        cfg.optim_wrapper.dtype = dtype


def cpu_autocast_without_gpu(cfg: Config) -> bool:
    """A bf16 AMP config (``AmpOptimWrapper`` with ``dtype='bfloat16'``, e.g. from
    ``--amp-dtype bfloat16``) on a machine without CUDA whose CPU runs bf16: bf16 autocast on
    the CPU (``convnext_backbone.CPUAutocastOptimWrapper``) instead of mmengine's assertion.
    Returns whether the config was changed (otherwise :func:`fall_back_to_fp32_without_gpu`
    decides)."""
    wrapper = cfg.get('optim_wrapper')
    if (not wrapper or wrapper.get('type') != 'AmpOptimWrapper' or torch.cuda.is_available()
            or str(wrapper.get('dtype')).replace('torch.', '') != 'bfloat16'
            or not cpu_supports_bf16()):
        return False
    wrapper.type = 'convnext_backbone.CPUAutocastOptimWrapper'
    for key in ('loss_scale', 'use_fsdp'):
        wrapper.pop(key, None)
    print_log('No CUDA device: this bf16 AMP config runs with bf16 autocast on the CPU '
              '(CPUAutocastOptimWrapper: forward and losses in bf16, fp32 weights and '
              'optimizer, no loss scaling; validation in fp32).', logger='current')
    return True


def fall_back_to_fp32_without_gpu(cfg: Config) -> bool:
    """An AMP config on a machine without CUDA trains in fp32 (mmengine would assert).

    Returns whether the config was changed.
    """
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or wrapper.get('type') != 'AmpOptimWrapper' or torch.cuda.is_available():
        return False
    wrapper.type = 'OptimWrapper'
    dtype = wrapper.pop('dtype', None)
    for key in ('loss_scale', 'use_fsdp'):
        wrapper.pop(key, None)
    bf16 = (' (bf16 autocast on this CPU: tools/train.py --amp-dtype bfloat16)'
            if cpu_supports_bf16()
            else ' (this CPU has no bf16 support for autocast)')
    print_log(f'No CUDA device: this AMP ({dtype or "float16"}) config runs in '
              f'fp32 with OptimWrapper{bf16}; results and speed differ from the GPU recipe.',
              logger='current')
    return True


def flush_denormals() -> bool:
    """Treat denormal floats as zero on CPU (FTZ/DAZ), as GPUs do in practice.

    Training drives some values (AdamW moments of near-zero gradients, tiny activations) into the
    denormal range, where x86 arithmetic is 10-100x slower: measured here, a toy Mask R-CNN step
    went from 8.1 s to 0.6 s. Values below ~1e-38 become 0, far below anything that matters.
    Returns whether the CPU supports it.
    """
    return torch.set_flush_denormal(True)


def trust_checkpoints(paths: Sequence[str]) -> None:
    """``--trust-checkpoint``: the user vouches for these files (see ``checkpoint.safety``)."""
    for path in paths or ():
        trust_checkpoint(path)


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (``'auto'``: the work dir's latest checkpoint) or ``--resume PATH``; a named
    file is checked at once (exists, complete, safe or trusted)."""
    if not resume:
        return
    cfg.resume = True
    cfg.load_from = None if resume == 'auto' else resume
    if resume != 'auto':
        check_checkpoint_file(resume, '--resume')


def allow_nonfinite_losses(cfg: Config) -> bool:
    """``--allow-nonfinite``: the config's NonFiniteLossHook warns instead of stopping.
    Returns False when the config names no such hook (then nothing checks losses anyway)."""
    for hook in cfg.get('custom_hooks') or ():
        if isinstance(hook, dict) and str(hook.get('type', '')).endswith('NonFiniteLossHook'):
            hook['action'] = 'warn'
            return True
    return False


class HookOptionError(ValueError):
    """A tool option that needs a hook the config does not name."""


def set_checkpoint_hook_options(cfg: Config, **options) -> None:
    """``--partial-load`` / ``--overwrite-checkpoints``: options of the config's
    ``CrashSafeCheckpointHook`` (``partial_load``, ``overwrite``); only true ones are set.
    A config whose checkpoint hook is another one cannot honour them: a clear error."""
    wanted = {key: value for key, value in options.items() if value}
    if not wanted:
        return
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if not isinstance(hook, dict) or not str(hook.get('type', '')).endswith(
            'CrashSafeCheckpointHook'):
        flags = ', '.join('--' + key.replace('_', '-') for key in wanted)
        raise HookOptionError(f'{flags} needs default_hooks.checkpoint of type '
                         "'convnext_backbone.CrashSafeCheckpointHook' (our configs' base runtimes "
                         f'name it); this config has {hook.get("type") if hook else None!r}. Add '
                         "default_hooks = dict(checkpoint=dict(type='convnext_backbone."
                         "CrashSafeCheckpointHook')) to the config.")
    hook.update(wanted)
