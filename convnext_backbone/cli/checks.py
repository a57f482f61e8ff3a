"""Checks our tools run on a prepared config before mmengine's Runner builds anything.

* Datasets: a missing COCO/ADE20K annotation file on the local disk is a message saying where
  the data must be and how to get it, instead of a stack trace from the dataset class. Paths
  are the host's (the dataset class joins ``data_root`` and ``ann_file`` by its rule, a URL is
  kept as it is) and so is the storage they are read through (the dataset's ``backend_args``):
  a file on other storage is read in ``data_checks``, and the folders the pipeline reads are
  checked there, where it is known which ones it reads (``data.host_paths``).
* Work dir: a folder we cannot create or write to is one message naming the path and the
  reason (a file in the way, no permission) instead of an OSError from the Runner's makedirs;
  a fresh run into a folder with an earlier run's checkpoints is refused before the Runner
  writes its config dump there.
* Type names: ``convnext_backbone.*`` names are checked against what the package registers, so a
  typo names the registered names and the closest one instead of mmengine's "not in the
  mmdet::model registry".
"""
import contextlib
import difflib
import os
import os.path as osp
import tempfile
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..checkpoint.files import is_local_path
from ..data import host_paths
from ..data.loader_checks import check_loaders
from ..engine.checkpoint_hook import refuse_earlier_checkpoints

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


class WorkDirError(OSError):
    """The work dir cannot be created or written to."""

    def __str__(self) -> str:  # OSError would prefix an errno
        return str(self.args[0]) if self.args else ''


def missing_parents(path: str) -> List[str]:
    """``path`` and its ancestors that do not exist yet, innermost first."""
    missing, path = [], osp.abspath(path)
    while not osp.exists(path) and osp.dirname(path) != path:
        missing.append(path)
        path = osp.dirname(path)
    return missing


def remove_created(created: List[str]) -> None:
    """Remove the folders ``missing_parents`` listed, innermost first, while they are empty."""
    for path in created:
        with contextlib.suppress(OSError):
            os.rmdir(path)


def why_unwritable(folder: str, leave_no_trace: bool = False) -> Optional[str]:
    """Why no file can be written into ``folder`` (created if missing), or None.
    ``leave_no_trace``: the folders this created are removed again (a check of a folder the
    run will create later)."""
    created = missing_parents(folder) if leave_no_trace else []
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or type(error).__name__
    finally:
        remove_created(created)
    return None


def check_work_dir(path: str) -> None:
    """Create ``path`` if needed and make sure a file can be written there."""
    why = why_unwritable(path)
    if why:
        blocker = next((p for p in _parents(path) if osp.exists(p) and not osp.isdir(p)), None)
        if blocker:
            why = f'{blocker} is a file, not a folder'
        raise WorkDirError(f'work dir {path}: cannot write there ({why}). Choose another '
                           '--work-dir (logs and checkpoints go there), or fix the permissions of '
                           'the folder.') from None


def check_fresh_run(cfg: Config) -> None:
    """A fresh run (no resume) whose ``CrashSafeCheckpointHook`` would refuse the folder's
    earlier checkpoints is refused here already, before the Runner writes anything into it.
    Configs with another checkpoint hook, ``overwrite=True``, or a remote folder: nothing
    checked here (the hook decides as it always does)."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if cfg.get('resume') or not isinstance(hook, dict) or hook.get('overwrite') \
            or not str(hook.get('type', '')).endswith('CrashSafeCheckpointHook'):
        return
    folder = cfg.work_dir
    if hook.get('out_dir'):  # mmengine's CheckpointHook: <out_dir>/<work dir's name>
        folder = osp.join(hook['out_dir'], osp.basename(osp.normpath(cfg.work_dir)))
    if is_local_path(folder, hook.get('file_client_args'), hook.get('backend_args')):
        refuse_earlier_checkpoints(folder)


def _parents(path: str) -> list:
    path = osp.abspath(path)
    found = [path]
    while osp.dirname(path) != path:
        path = osp.dirname(path)
        found.append(path)
    return found


class UnknownTypeError(KeyError):
    """A config names a ``convnext_backbone.*`` type that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ''


def _datasets(dataset: dict) -> Iterator[dict]:
    """A dataset config and the ones it wraps (RepeatDataset, ConcatDataset, ...)."""
    yield dataset
    inner = dataset.get('dataset')
    if isinstance(inner, dict):
        yield from _datasets(inner)
    for inner in dataset.get('datasets') or ():
        yield from _datasets(inner)


def missing_part(path: str, root: Optional[str]) -> str:
    """What a message names for a missing local ``path``: the data root when that is missing
    too and holds it, else the path itself."""
    if root and path.startswith(root) and host_paths.storage(root, None)[1] and \
            not osp.isdir(root):
        return root
    return path


def _missing_paths(dataset: dict, scope: Optional[str], where: str) -> list:
    """The dataset's annotation file when it is on the local disk and not there (as the host
    joins and reads it); nothing when the dataset class is not one whose reading is known."""
    host = host_paths.build(dataset, scope, where)
    ann_file = getattr(host, 'ann_file', None)
    if not ann_file or not isinstance(ann_file, str):
        return []
    if host_paths.storage(ann_file, getattr(host, 'backend_args', None))[1] and \
            not osp.isfile(ann_file):
        return [missing_part(ann_file, host.data_root)]
    return []


def loader_datasets(cfg: Config, loaders: Sequence[str]) -> Iterator[Tuple[str, dict]]:
    """``(loader name, dataset config)`` for every dataset (wrapped ones too) of the loaders."""
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if loader_cfg and 'dataset' in loader_cfg:
            for dataset in _datasets(loader_cfg.dataset):
                yield loader, dataset


def dataset_not_found(loader: str, dataset: dict, missing: Sequence[str]):
    """The error for local data that is not there: where it must be and how to get it."""
    name, where, how = DATASET_HELP.get(
        dataset.get('type'), ('the dataset', dataset.get('data_root'),
                              'Put the data there or point the config at it.'))
    return DatasetNotFoundError(
        f'{loader}: {name} not found: missing {", ".join(missing)}. It is expected under '
        f'{where}/. {how} Or set another root: --cfg-options '
        f'{loader}.dataset.data_root=PATH. To try the project without any download, '
        'run `make demo` (generated toy data).')


def check_datasets(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise :class:`DatasetNotFoundError` naming the missing data and how to get it (after
    the loaders' settings are checked: ``data.loader_checks``)."""
    check_loaders(cfg, loaders)
    for loader, dataset in loader_datasets(cfg, loaders):
        if 'dataset' in dataset or 'datasets' in dataset:
            continue  # a wrapper: its inner datasets come next
        missing = _missing_paths(dataset, cfg.get('default_scope'), f'{loader}.dataset')
        if missing:
            raise dataset_not_found(loader, dataset, missing)


# Type names -------------------------------------------------------------------------------------

_TYPE_KEYS = ('type', 'constructor')


def _registered_names() -> List[Tuple[str, str]]:
    """``(name, what)`` for everything convnext_backbone registers."""
    from .. import registry
    names = []
    for reg in (registry.MODELS, registry.OPTIM_WRAPPER_CONSTRUCTORS, registry.OPTIM_WRAPPERS,
                registry.HOOKS, registry.TRANSFORMS):
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
