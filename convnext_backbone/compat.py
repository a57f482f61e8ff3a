"""The one place where importing convnext_backbone changes its host, and only where the 2023-era
OpenMMLab stack (mmengine 0.10) cannot run on today's torch and setuptools.

Each fix is a :class:`Fix`: a check that the installed stack has the problem (applied only then),
the change, and its undoing. :data:`FIXES` lists them all; :func:`apply` runs on import,
:func:`revert` undoes what was applied. ``CONVNEXT_BACKBONE_NO_FIXES=1`` switches them all off,
``CONVNEXT_BACKBONE_NO_FIXES=name,name`` the named ones (set it before the import).

1. ``safe_checkpoint_loading``: torch >= 2.6 unpickles with ``weights_only=True`` by default, and
   mmengine's local checkpoint loader (resume, ``load_from``, ``init_detector``, ``init_model``)
   then fails on the checkpoints mmengine itself writes ("Unsupported global: HistoryBuffer").
   Needed when ``torch.load`` refuses such a checkpoint; the loader is then
   :func:`convnext_backbone.checkpoint.load_checkpoint_file` (the package's safe-loading policy:
   plain data always, code only from trusted files), registered through mmengine's own
   ``CheckpointLoader.register_scheme``.
2. ``package_lookup_without_pkg_resources``: ``_base_ = 'mmdet::...'`` makes mmengine call
   ``is_installed``/``get_installed_path``, which import ``pkg_resources``, removed in setuptools
   82. Needed when ``pkg_resources`` cannot be imported; ours answer from ``importlib.metadata``.
3. ``package_prefix_for_our_configs``: ``_base_ = 'convnext_backbone::maskrcnn/...py'`` (the way
   configs name ``mmdet::`` / ``mmseg::`` ones) fails with "mmengine does not support to load
   convnext_backbone config": mmengine 0.10 resolves ``pkg::`` only for the packages of its fixed
   table (``mmengine.config.utils.MODULE2PACKAGE``). Needed while that table has no entry for us;
   the prefix then names the configs shipped in this package (``convnext_backbone/.mim/configs``:
   copies in a wheel, links in a clone or editable install), found where the package was imported
   from, read as if inherited by path. Only configs read after ``import convnext_backbone`` can use
   it (our tools and ``mim train convnext_backbone`` import it first).
4. ``checked_checkpoint_downloads``: mmengine's ``http(s)://`` checkpoint loader (``load_from``,
   ``init_detector``, ``init_model``, the inferencers given a URL) downloads with torch hub, which
   keeps a transfer cut off half-way as if it were complete (it never checks the announced
   length), and unpickles the file with ``weights_only=False``: any code pickled in a downloaded
   file runs, past the safe-loading policy of fix 1. Needed while mmengine's loader downloads
   with torch hub's ``load_state_dict_from_url`` and that defaults to ``weights_only=False``; the
   loader is then :func:`convnext_backbone.checkpoint.download.load_checkpoint_url` (the same cache,
   ``torch.hub.get_dir()/checkpoints``; complete files only; read by the safe loader),
   registered through ``CheckpointLoader.register_scheme``.

Not here, on purpose: behaviour (crash-safe checkpoints, non-finite-loss stops, exact resume) is
in registered components that configs name (``convnext_backbone.engine``), and running
distributed without a GPU is a launcher matter (``convnext_backbone.cli.distributed``).
"""
import importlib.metadata
import importlib.util
import io
import os
import os.path as osp
import pickle
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import torch

DISABLE_ENV = 'CONVNEXT_BACKBONE_NO_FIXES'


@dataclass
class Fix:
    """One host incompatibility: ``needed()`` checks for it, ``apply()`` fixes it and returns the
    function that undoes the change."""
    name: str
    needed: Callable[[], bool]
    apply: Callable[[], Callable[[], None]]
    undo: List[Callable[[], None]] = field(default_factory=list)


# 1. mmengine's checkpoint loader under torch's weights_only default ------------------------------

def _torch_refuses_runner_checkpoints() -> bool:
    from mmengine.logging import HistoryBuffer
    buffer = io.BytesIO()
    torch.save({'message_hub': HistoryBuffer()}, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer)  # torch's default, as mmengine's loader calls it
    except pickle.UnpicklingError:
        return True
    return False


def _use_safe_checkpoint_loader() -> Callable[[], None]:
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint.safety import load_checkpoint_file
    original = CheckpointLoader._schemes['']
    CheckpointLoader.register_scheme('', load_checkpoint_file, force=True)
    return lambda: CheckpointLoader.register_scheme('', original, force=True)


# 2. 'mmdet::' / 'mmseg::' config lookup without pkg_resources ------------------------------------

def _pkg_resources_missing() -> bool:
    """Whether ``import pkg_resources`` would fail (found without importing it: the import
    itself warns that the API is deprecated)."""
    if 'pkg_resources' in sys.modules:
        return sys.modules['pkg_resources'] is None
    return importlib.util.find_spec('pkg_resources') is None


def is_installed(package: str) -> bool:
    """Whether ``package`` (a distribution or an importable module name) is installed."""
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """The folder of an installed package, given its module name or its distribution name."""
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin is not None:
        return osp.dirname(spec.origin)
    top_level = (importlib.metadata.distribution(package).read_text('top_level.txt') or '').split()
    if not top_level:
        raise ModuleNotFoundError(f'Cannot tell which module the distribution {package} installs.')
    return get_installed_path(top_level[0])


def _package_lookup_from_metadata() -> Callable[[], None]:
    import mmengine.config.config as config_module
    import mmengine.utils as utils_module
    modules = (config_module, utils_module)
    saved = [(m, m.is_installed, m.get_installed_path) for m in modules]
    for module in modules:
        module.is_installed = is_installed
        module.get_installed_path = get_installed_path

    def undo() -> None:
        for module, installed, path in saved:
            module.is_installed, module.get_installed_path = installed, path
    return undo


# 3. 'convnext_backbone::' config prefix --------------------------------------------------------

PREFIX = 'convnext_backbone'
SHIPPED_CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), '.mim', 'configs')


def _prefix_unknown_to_mmengine() -> bool:
    from mmengine.config.utils import MODULE2PACKAGE
    return PREFIX not in MODULE2PACKAGE


def shipped_config_path(name: str) -> str:
    """The file that ``convnext_backbone::<name>`` names: ``<name>`` under the package's
    ``.mim/configs``. A name that is not there is a ``FileNotFoundError`` saying where we looked."""
    path = osp.join(SHIPPED_CONFIGS, name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{PREFIX}::{name}: no such config in {SHIPPED_CONFIGS}. Name one of the shipped '
            'configs relative to that folder (e.g. '
            f'{PREFIX}::maskrcnn/maskrcnn_convnext_t_3x_coco.py; `mim search {PREFIX}` lists '
            'them).')
    return path


def _resolve_our_prefix() -> Callable[[], None]:
    from mmengine.config import Config
    original = Config.__dict__['_get_cfg_path']  # a staticmethod

    def _get_cfg_path(cfg_path: str, filename: str):
        package, sep, name = cfg_path.partition('::')
        if sep and package == PREFIX:
            # No scope (mmengine would give the package's): our configs' own dicts name types
            # of the config's default scope (mmdet's or mmseg's), as when inherited by path.
            return shipped_config_path(name), None
        return original.__func__(cfg_path, filename)

    Config._get_cfg_path = staticmethod(_get_cfg_path)
    return lambda: setattr(Config, '_get_cfg_path', original)


# 4. mmengine's http(s) checkpoint loader --------------------------------------------------------

URL_SCHEMES = ('http://', 'https://')


def _mmengine_downloads_unchecked() -> bool:
    """Whether the http(s) loader is mmengine's own (or this fix's: then it was), which
    downloads with torch hub: a cut-off transfer kept, the file unpickled with
    ``weights_only=False``. A loader someone else registered is left alone."""
    import inspect

    from mmengine.runner import checkpoint as mmengine_checkpoint

    from .checkpoint.download import load_checkpoint_url
    registered = [mmengine_checkpoint.CheckpointLoader._schemes.get(p) for p in URL_SCHEMES]
    if not all(loader in (mmengine_checkpoint.load_from_http, load_checkpoint_url)
               for loader in registered):
        return False
    load_url = getattr(mmengine_checkpoint, 'load_url', None)
    if load_url is not torch.hub.load_state_dict_from_url:
        return False
    parameter = inspect.signature(load_url).parameters.get('weights_only')
    return parameter is not None and parameter.default is False


def _use_checked_downloads() -> Callable[[], None]:
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint.download import load_checkpoint_url
    originals = {prefix: CheckpointLoader._schemes[prefix] for prefix in URL_SCHEMES}
    CheckpointLoader.register_scheme(list(URL_SCHEMES), load_checkpoint_url, force=True)

    def undo() -> None:
        for prefix, loader in originals.items():
            CheckpointLoader.register_scheme(prefix, loader, force=True)
    return undo


FIXES: Dict[str, Fix] = {fix.name: fix for fix in (
    Fix('safe_checkpoint_loading', _torch_refuses_runner_checkpoints,
        _use_safe_checkpoint_loader),
    Fix('package_lookup_without_pkg_resources', _pkg_resources_missing,
        _package_lookup_from_metadata),
    Fix('package_prefix_for_our_configs', _prefix_unknown_to_mmengine, _resolve_our_prefix),
    Fix('checked_checkpoint_downloads', _mmengine_downloads_unchecked, _use_checked_downloads),
)}


def disabled() -> List[str]:
    """The fixes switched off by ``CONVNEXT_BACKBONE_NO_FIXES``."""
    value = os.environ.get(DISABLE_ENV, '').strip()
    if value.lower() in ('1', 'all', 'true', 'yes'):
        return list(FIXES)
    names = [name.strip() for name in value.split(',') if name.strip()]
    unknown = [name for name in names if name not in FIXES]
    if unknown:
        raise ValueError(f'{DISABLE_ENV}={value!r}: no fix named {unknown}; the fixes are '
                         f'{list(FIXES)} (or 1 for all).')
    return names


def applied() -> List[str]:
    """The fixes in effect now."""
    return [name for name, fix in FIXES.items() if fix.undo]


def apply() -> List[str]:
    """Apply each fix that is needed and not switched off (idempotent); returns those applied."""
    off = disabled()
    for name, fix in FIXES.items():
        if not fix.undo and name not in off and fix.needed():
            fix.undo.append(fix.apply())
    return applied()


def revert() -> None:
    """Give the host back its own functions (the last applied first)."""
    for fix in reversed(list(FIXES.values())):
        while fix.undo:
            fix.undo.pop()()


apply()
