"""What our train/test tools do to a config before mmengine's Runner takes it.

One shape for detection and segmentation: load the config (with ``--cfg-options``), choose the
work dir, make AMP configs run on a machine without a GPU (fp32, with a notice, instead of
mmengine's assertion), and check that the datasets exist, so a missing COCO/ADE20K folder is a
message saying where the data must be and how to get it rather than a stack trace from the
dataset class. Training runs get the reliability hooks (stop on a NaN/inf loss, bit-exact
resume; ``convnext_backbone.engine.hooks``), and ``convnext_backbone.*`` type names are checked
before anything is built, so a typo names the registered names instead of mmengine's
"not in the mmdet::model registry". ``USER_ERRORS`` are the errors the tools print as one
``error: ...`` line (no traceback): each says what is wrong and how to fix it. The tools in
``tools/`` are thin command lines over these functions.
"""
import difflib
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from . import compat
from .checkpoint.errors import CheckpointError
from .engine.hooks import NonFiniteLossError

DATASET_HELP = {
    'CocoDataset': (
        'COCO 2017', 'data/coco',
        'Download train2017.zip, val2017.zip and annotations_trainval2017.zip from '
        'https://cocodataset.org/#download and unpack them into data/coco/ '
        '(annotations/, train2017/, val2017/); see docs/datasets.md.'),
    'ADE20KDataset': (
        'ADE20K (ADEChallengeData2016)', 'data/ade/ADEChallengeData2016',
        'Download ADEChallengeData2016.zip from http://sceneparsing.csail.mit.edu/ and unzip it '
        'into data/ade/ (images/, annotations/); see docs/datasets.md.'),
}


class DatasetNotFoundError(FileNotFoundError):
    """A config's dataset is not where the config says."""


class UnknownTypeError(KeyError):
    """A config names a ``convnext_backbone.*`` type that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ''


#: Errors our tools print as a single ``error: ...`` line: each message names the problem and
#: the fix, so a traceback would only hide it.
USER_ERRORS = (FileNotFoundError, UnknownTypeError, CheckpointError,
               compat.UntrustedCheckpointError, NonFiniteLossError)


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
    """Command line > config > ``work_dirs/<config name>`` (mmdet's and mmseg's rule)."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


def enable_amp(cfg: Config) -> None:
    """``--amp``: mixed precision through mmengine's AmpOptimWrapper, dynamic loss scale."""
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def fall_back_to_fp32_without_gpu(cfg: Config) -> bool:
    """An AMP config on a machine without CUDA trains in fp32 (mmengine would assert).

    Returns whether the config was changed.
    """
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or wrapper.get('type') != 'AmpOptimWrapper' or torch.cuda.is_available():
        return False
    wrapper.type = 'OptimWrapper'
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        wrapper.pop(key, None)
    print_log('No CUDA device: this AMP (fp16) config runs in fp32 with OptimWrapper; results '
              'and speed differ from the GPU recipe.', logger='current')
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
    """``--trust-checkpoint``: the user vouches for these files (see ``compat``)."""
    for path in paths or ():
        compat.trust_checkpoint(path)


def _datasets(dataset: dict) -> Iterator[dict]:
    """A dataset config and the ones it wraps (RepeatDataset, ConcatDataset, ...)."""
    yield dataset
    inner = dataset.get('dataset')
    if isinstance(inner, dict):
        yield from _datasets(inner)
    for inner in dataset.get('datasets') or ():
        yield from _datasets(inner)


def _missing_paths(dataset: dict) -> list:
    root = dataset.get('data_root') or ''
    missing = []
    if root and not osp.isdir(root):
        return [root]
    ann_file = dataset.get('ann_file')
    if ann_file and not osp.isfile(osp.join(root, ann_file)):
        missing.append(osp.join(root, ann_file))
    for prefix in (dataset.get('data_prefix') or {}).values():
        if isinstance(prefix, str) and prefix and not osp.isdir(osp.join(root, prefix)):
            missing.append(osp.join(root, prefix))
    return missing


def check_datasets(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise :class:`DatasetNotFoundError` naming the missing data and how to get it."""
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or 'dataset' not in loader_cfg:
            continue
        for dataset in _datasets(loader_cfg.dataset):
            missing = _missing_paths(dataset)
            if not missing:
                continue
            name, where, how = DATASET_HELP.get(
                dataset.get('type'), ('the dataset', dataset.get('data_root'),
                                      'Put the data there or point the config at it.'))
            raise DatasetNotFoundError(
                f'{loader}: {name} not found: missing {", ".join(missing)}. It is expected under '
                f'{where}/. {how} Or set another root: --cfg-options '
                f'{loader}.dataset.data_root=PATH. To try the project without any download, '
                'run `make demo` (generated toy data).')


# Type names -------------------------------------------------------------------------------------

_TYPE_KEYS = ('type', 'constructor')


def _registered_names() -> List[Tuple[str, str]]:
    """``(name, what)`` for everything convnext_backbone registers."""
    from . import registry
    names = []
    for reg in (registry.MODELS, registry.OPTIM_WRAPPER_CONSTRUCTORS, registry.HOOKS):
        reg.import_from_location()
        names += [(name, reg.name) for name in reg.module_dict]
    return names


def _type_entries(node, where: str) -> Iterator[Tuple[str, str]]:
    """``(config path, value)`` of every ``type``/``constructor`` string in a config tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{where}.{key}' if where else str(key)
            if key in _TYPE_KEYS and isinstance(value, str):
                yield path, value
            else:
                yield from _type_entries(value, path)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _type_entries(value, f'{where}.{i}')


def check_type_names(cfg: Config) -> None:
    """Raise :class:`UnknownTypeError` for a ``convnext_backbone.X`` the package does not
    register, or a bare name that is one of ours in another spelling (e.g. ``'ConvNeXt'`` in an
    mmdet/mmseg config, which mmdet/mmseg do not have), with the registered names and the
    closest match."""
    registered = _registered_names()
    names = [name for name, _ in registered]
    by_lower = {name.lower(): name for name in names}
    prefix = 'convnext_backbone.'
    for where, value in _type_entries(cfg.to_dict(), ''):
        if value.startswith(prefix):
            name = value[len(prefix):]
            if name in names:
                continue
            problem = 'no such type in convnext_backbone.'
        elif '.' not in value and value.lower() in by_lower and \
                cfg.get('default_scope') in ('mmdet', 'mmseg'):
            name = value
            problem = f"{cfg.get('default_scope')} has no such type; it is convnext_backbone's."
        else:
            continue
        close = [by_lower[name.lower()]] if name.lower() in by_lower else \
            difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f" Did you mean '{prefix}{close[0]}'?" if close else ''
        listing = '; '.join(f'{known} ({what})' for known, what in registered)
        raise UnknownTypeError(
            f'{where} = {value!r}: {problem}{hint} Names are '
            f"case-sensitive and need the '{prefix}' prefix (and custom_imports="
            f"dict(imports=['convnext_backbone'])) in mmdet/mmseg configs. convnext_backbone "
            f'registers: {listing}.')


# Reliability hooks ------------------------------------------------------------------------------

def add_reliability_hooks(cfg: Config, allow_nonfinite: bool = False) -> None:
    """Add ``NonFiniteLossHook`` (``action='warn'`` with ``allow_nonfinite``) and
    ``RNGStateHook`` to ``custom_hooks``, unless the config already has them."""
    hooks = list(cfg.get('custom_hooks') or [])

    def find(name):
        return next((h for h in hooks if isinstance(h, dict) and
                     str(h.get('type', '')).split('.')[-1] == name), None)

    nonfinite = find('NonFiniteLossHook')
    if nonfinite is None:
        hooks.append(dict(type='convnext_backbone.NonFiniteLossHook',
                          action='warn' if allow_nonfinite else 'raise'))
    elif allow_nonfinite:
        nonfinite['action'] = 'warn'
    if find('RNGStateHook') is None:
        hooks.append(dict(type='convnext_backbone.RNGStateHook'))
    cfg.custom_hooks = hooks


def check_checkpoint_file(path: str, flag: str) -> None:
    """A checkpoint named on the command line must exist, be complete, and be safe to load or
    trusted (``compat.check_checkpoint``): fail in a second, before anything is built.
    Call it after :func:`trust_checkpoints`."""
    if not osp.isfile(path):
        what = 'is a folder, not a checkpoint file' if osp.isdir(path) else 'does not exist'
        raise FileNotFoundError(
            f'{flag}: checkpoint {path} {what}. Give the path of a .pth file written by '
            'tools/train.py (e.g. work_dirs/<config name>/epoch_12.pth, or the file named in '
            'work_dirs/<config name>/last_checkpoint).')
    compat.check_checkpoint(path)


def end_distributed_worker() -> None:
    """After a distributed run has finished its work: every rank meets, the process group is torn
    down, logs and output are flushed, and the worker exits at once (``os._exit(0)``).

    Why: a finished torchrun worker on gloo (CPU) sometimes aborted during interpreter shutdown
    ("terminate called without an active exception", exit -6) after training, validation and
    the last checkpoint were done, and torchrun then reported the whole run as failed. Seen 3
    times in about 30 two-process runs here, also when the process group had been destroyed by
    an exit handler, so the crash is in C++ teardown after Python's; exiting without that
    teardown avoids it. Outside a distributed run this does nothing and the tool returns.
    """
    import logging
    import os
    import sys

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
