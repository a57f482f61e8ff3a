"""The data loaders a config describes, built where it is cheap, before any data is read.

mmengine builds a loader's dataset, pipeline, sampler and torch ``DataLoader`` when training or
testing starts; a mistaken setting there (``batch_size=0``, a misspelt transform type, a
``prob`` that is not a probability, ``persistent_workers`` without workers, ``data_root=3``)
is a traceback from deep inside mmengine, mmcv or torch, after the model was built. Here each
loader's settings are checked with the host's own builders on stand-ins that cost nothing: the
pipeline is built by the dataset's registry (``Compose``), the sampler and batch sampler by
mmengine's ``DATA_SAMPLERS`` over a one-item list, the ``DataLoader`` arguments by torch's
``DataLoader`` over that list; the dataset's path settings are type-checked. A failure is one
:class:`DataError` naming the config key, its value and the host's reason. The dataset itself
(annotation parsing) is not built here: that is the Runner's, once.
"""
import copy
from typing import Optional

from .errors import DataError

#: torch DataLoader arguments a loader config may set (the rest of it is mmengine's).
_LOADER_ARGS = ('batch_size', 'num_workers', 'persistent_workers', 'drop_last', 'pin_memory',
                'prefetch_factor', 'timeout')


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ''
    return f'{type(error).__name__}: {text[:300]}' if text else type(error).__name__


def _fail(where: str, value, error: Optional[BaseException], fix: str) -> DataError:
    if isinstance(value, dict):  # as the user wrote it: without the scope mmengine adds
        value = {k: v for k, v in value.items() if k != '_scope_'}
    shown = repr(value)
    shown = shown if len(shown) <= 120 else shown[:117] + '...'
    why = f' ({_reason(error)})' if error is not None else ''
    return DataError(f'{where} = {shown} cannot be used{why}. {fix}')


def _check_paths(dataset: dict, where: str) -> None:
    for key in ('data_root', 'ann_file'):
        value = dataset.get(key)
        if value is not None and not isinstance(value, str):
            raise _fail(f'{where}.{key}', value, None, 'Write a path as a string.')
    prefix = dataset.get('data_prefix')
    if prefix is not None and not (isinstance(prefix, dict) and
                                   all(isinstance(v, str) for v in prefix.values())):
        raise _fail(f'{where}.data_prefix', prefix, None,
                    "Write it as a dict of folder names, e.g. dict(img='train2017/').")
    filter_cfg = dataset.get('filter_cfg')
    if filter_cfg is not None:
        if not isinstance(filter_cfg, dict):
            raise _fail(f'{where}.filter_cfg', filter_cfg, None,
                        'Write it as dict(filter_empty_gt=True, min_size=32), or None.')
        size = filter_cfg.get('min_size', 0)
        if not isinstance(size, (int, float)) or isinstance(size, bool) or size < 0:
            raise _fail(f'{where}.filter_cfg.min_size', size, None,
                        'Write a number of pixels (0 keeps every image).')
    metainfo = dataset.get('metainfo')
    if metainfo is not None:
        classes = metainfo.get('classes') if isinstance(metainfo, dict) else None
        if not isinstance(metainfo, dict) or (
                'classes' in metainfo and not (isinstance(classes, (list, tuple)) and classes
                                               and all(isinstance(c, str) for c in classes))):
            raise _fail(f'{where}.metainfo', metainfo, None,
                        "Write metainfo=dict(classes=('name', ...)), the names as strings.")


def _build(registry, cfg, where: str, default_args=None):
    try:
        if not isinstance(cfg, dict) or not isinstance(cfg.get('type'), str) or \
                not cfg['type']:
            raise TypeError('it needs a type name')
        return registry.build(copy.deepcopy(cfg), default_args=default_args)
    except DataError:
        raise
    except Exception as error:
        raise _fail(where, cfg, error, 'Fix that entry (the type must be registered, its '
                    'arguments those of the type).') from None


def check_loader(loader_cfg, loader: str, scope: str) -> None:
    """Raise :class:`DataError` for the first setting of ``loader_cfg`` the host cannot use."""
    from mmengine.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS, DefaultScope
    from torch.utils.data import DataLoader
    if loader_cfg is None:
        return
    if not isinstance(loader_cfg, dict) or not isinstance(loader_cfg.get('dataset'), dict):
        raise _fail(loader, loader_cfg, None, f'Write {loader} = dict(batch_size=..., '
                    'num_workers=..., sampler=dict(...), dataset=dict(type=..., ...)).')
    with DefaultScope.overwrite_default_scope(scope):
        _check_dataset(loader_cfg['dataset'], f'{loader}.dataset', DATASETS, TRANSFORMS)
        stand_in = [0]
        if not isinstance(loader_cfg.get('sampler'), dict):
            raise _fail(f'{loader}.sampler', loader_cfg.get('sampler'), None,
                        "Write sampler=dict(type='DefaultSampler', shuffle=True) (mmengine "
                        'needs one).')
        sampler = _build(DATA_SAMPLERS, loader_cfg['sampler'], f'{loader}.sampler',
                         dict(dataset=stand_in, seed=0))
        size = loader_cfg.get('batch_size')
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise _fail(f'{loader}.batch_size', size, None,
                        'Write the number of images per batch (and process), e.g. 2.')
        if loader_cfg.get('batch_sampler') is not None:
            _build(DATA_SAMPLERS, loader_cfg['batch_sampler'], f'{loader}.batch_sampler',
                   dict(sampler=sampler, batch_size=size))
        args = {k: loader_cfg[k] for k in _LOADER_ARGS if k in loader_cfg}
        for key in sorted(args, key=lambda k: k != 'num_workers'):
            subset = {k: args[k] for k in (key, 'num_workers') if k in args}
            try:
                DataLoader(stand_in, **subset)
            except Exception as error:
                raise _fail(f'{loader}.{key}', args[key], error,
                            'Fix the value (num_workers >= 0; persistent_workers and '
                            'prefetch_factor only with num_workers > 0).') from None


def check_loaders(cfg, loaders) -> None:
    """:func:`check_loader` for each named loader of ``cfg`` (under its default scope)."""
    import importlib.util
    scope = cfg.get('default_scope')
    if not isinstance(scope, str) or not scope or importlib.util.find_spec(scope) is None:
        return  # an unknown scope is the config loader's or the Runner's to report
    for loader in loaders:
        if loader in cfg:
            check_loader(cfg.get(loader), loader, scope)


def _check_dataset(dataset: dict, where: str, datasets, transforms) -> None:
    for key in ('dataset', 'datasets'):  # wrappers: RepeatDataset, ConcatDataset, ...
        inner = dataset.get(key)
        for i, item in enumerate(inner if isinstance(inner, list) else [inner]):
            if isinstance(item, dict):
                _check_dataset(item, f'{where}.{key}' + (f'.{i}' if key == 'datasets' else ''),
                               datasets, transforms)
    kind, scope = dataset.get('type'), dataset.get('_scope_')
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise _fail(f'{where}._scope_', scope, None, "Write the package whose dataset it is, "
                    "e.g. 'mmdet' or 'mmseg', or leave _scope_ out.")
    with datasets.switch_scope_and_registry(scope) as registry:
        known = isinstance(kind, str) and kind and registry.get(kind) is not None
    if not known:
        raise _fail(f'{where}.type', kind, None, 'Name a registered dataset class, e.g. '
                    "'CocoDataset' (mmdet) or 'ADE20KDataset' (mmseg)" +
                    (f', of the scope {scope!r}.' if scope else '.'))
    _check_paths(dataset, where)
    pipeline = dataset.get('pipeline')
    if pipeline is None:
        return
    if not isinstance(pipeline, (list, tuple)):
        raise _fail(f'{where}.pipeline', pipeline, None, 'Write a list of transform dicts.')
    for i, step in enumerate(pipeline):
        _build(transforms, step, f'{where}.pipeline.{i}')
