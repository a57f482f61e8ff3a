"""The one place for the fixes the 2023-era OpenMMLab stack needs on today's torch and setuptools.

mmengine 0.10.7 / mmdet 3.3 / mmseg 1.2 predate torch 2.6 and setuptools 82. Each fix below is a
small named function that replaces one lookup with our own code (never a copy of theirs); all are
applied once when ``convnext_backbone`` is imported, so a config's ``custom_imports`` is enough.
``FIXES`` lists them; ``ORIGINALS`` keeps what each replaced (tests use it to show the failure the
fix removes).

1. ``safe_checkpoint_loading`` -- torch >= 2.6 loads with ``weights_only=True``, and mmengine's
   local loader (resume, ``load_from``, ``init_detector``, ``init_model``) then fails on the
   checkpoints mmengine itself writes. The rule we apply instead (safe loading stays on for
   everything else in the process):

   * every local checkpoint is first read with ``weights_only=True``, allowing for that one call
     only the plain-data classes mmengine stores in a checkpoint's ``message_hub`` and ``meta``
     (its ``HistoryBuffer`` and the ``getattr(HistoryBuffer, <statistics method>)`` it pickles,
     numpy arrays, scalars and dtypes): this reads the checkpoints runs write, and it can never
     execute code;
   * a checkpoint that needs anything more is unpickled in full only when it is trusted: it was
     written by this process (``mmengine.runner.checkpoint.save_checkpoint``), or the user named
     it, or a folder holding it, through :func:`trust_checkpoint` or the ``CONVNEXT_TRUSTED_CHECKPOINTS``
     environment variable (paths separated by ``os.pathsep``); our tools' ``--trust-checkpoint``
     flag calls :func:`trust_checkpoint`;
   * anything else fails with :class:`UntrustedCheckpointError`, which says how to trust it.

   Pretrained backbone weights never reach this path: ``convnext_backbone.checkpoint`` reads them
   with ``weights_only=True`` (or safetensors) only.
2. ``package_lookup_without_pkg_resources`` -- ``_base_ = 'mmdet::...'`` makes mmengine call
   ``is_installed``/``get_installed_path``, which import ``pkg_resources`` (removed in setuptools
   82, deprecated before). Ours answer from ``importlib.metadata`` and ``importlib.util``.
3. ``cpu_distributed`` -- mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and mmdet/mmseg
   configs ask for NCCL, so ``torchrun`` on a machine without a GPU crashes before training; and
   the Runner hands ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which torch refuses for a
   CPU model. Without CUDA we switch NCCL to gloo (with a notice), skip ``set_device`` and give DDP
   no device ids. With a GPU nothing changes.
4. ``crash_safe_checkpoints`` -- a run killed (SIGKILL, OOM killer, preemption, power loss) while
   mmengine writes a checkpoint must not lose what it had saved. mmengine writes the file in place
   (a kill leaves a truncated file under the final name), removes the oldest checkpoint *before*
   writing the new one (with ``max_keep_ckpts=1`` a kill mid-write leaves no complete checkpoint
   at all), and then rewrites ``last_checkpoint`` (the file ``--resume`` reads) in place. Ours:

   * every local save (``save_checkpoint``, which the Runner and the CheckpointHook use) goes to a
     temporary file in the same folder (``.<name>.tmp-<pid>``), is flushed to disk (fsync) and
     renamed over the final name (``os.replace``, atomic), then the folder is synced: the final
     name only ever holds a complete file. Leftovers of a killed save are removed by the next save
     of the same name;
   * the CheckpointHook deletes outdated checkpoints only after the new one and
     ``last_checkpoint`` are written;
   * ``find_latest_checkpoint`` (what ``resume=True`` without a path uses) takes the file named in
     ``last_checkpoint`` when it exists and is complete, and otherwise, with a warning, the newest
     complete ``epoch_N.pth`` / ``iter_N.pth`` of the work dir (so an empty or stale
     ``last_checkpoint`` never makes a resume start from scratch or fail);
   * a checkpoint that cannot be read (truncated, corrupt) fails with
     :class:`~convnext_backbone.checkpoint.CheckpointReadError` naming the file and what to do.
"""
import contextlib
import importlib.metadata
import importlib.util
import os
import os.path as osp
import pickle
from typing import Callable, Dict, Iterator, List, Optional, Set

import torch

# The file mechanics of fix 4; re-exported here, where the fixes are.
from .checkpoint_files import (_atomic_target, _DeferredRemoval, _is_local,  # noqa: F401
                               find_latest_checkpoint, is_complete_checkpoint, write_atomically)

FIXES: Dict[str, Callable[[], None]] = {}
ORIGINALS: Dict[str, Callable] = {}
_APPLIED: Set[str] = set()

TRUST_ENV = 'CONVNEXT_TRUSTED_CHECKPOINTS'
_trusted_paths: Set[str] = set()


def _fix(fn: Callable[[], None]) -> Callable[[], None]:
    FIXES[fn.__name__] = fn
    return fn


def apply() -> None:
    """Apply every fix once (idempotent)."""
    for name, fix in FIXES.items():
        if name not in _APPLIED:
            fix()
            _APPLIED.add(name)


# 1. Checkpoints ----------------------------------------------------------------------------------

class UntrustedCheckpointError(pickle.UnpicklingError):
    """A full checkpoint needs code-executing unpickling and nobody vouched for it."""


def trust_checkpoint(path: str) -> None:
    """Vouch for a checkpoint file, or for every file under a folder, for this process."""
    _trusted_paths.add(osp.realpath(osp.expanduser(path)))


def is_trusted_checkpoint(path: str) -> bool:
    """Whether ``path`` was written by this process or vouched for by the user."""
    real = osp.realpath(osp.expanduser(path))
    vouched = set(_trusted_paths)
    vouched.update(osp.realpath(p) for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p)
    return any(real == p or real.startswith(p.rstrip(os.sep) + os.sep) for p in vouched)


def _mmengine_checkpoint_data_types() -> List:
    """The plain-data classes mmengine writes into checkpoints (message hub, meta)."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    numpy_core = getattr(np, '_core', None) or np.core
    allowed = [HistoryBuffer, np.ndarray, np.dtype, numpy_core.multiarray._reconstruct,
               numpy_core.multiarray.scalar]
    allowed += [type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGUS']
    # Checkpoints written under numpy 1.x name numpy's private module ``numpy.core``.
    allowed += [(numpy_core.multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
                (numpy_core.multiarray.scalar, 'numpy.core.multiarray.scalar')]
    return allowed + [(_history_buffer_method, 'builtins.getattr')]


def _allowed_global_names() -> Set[str]:
    names = set()
    for entry in _mmengine_checkpoint_data_types():
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


def _unsafe_globals(filename: str) -> List[str]:
    """The globals a zip-format torch file needs beyond our allowlist, by a static scan of its
    pickle (nothing is loaded or run); [] when the scan is not possible."""
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # legacy (non-zip) files, or a torch without the scanner
        return []
    allowed = _allowed_global_names()
    return sorted(name for name in needed if name not in allowed)


def _history_buffer_method(owner, name):
    """The one ``getattr`` a Runner checkpoint needs: a HistoryBuffer's statistics method.

    mmengine pickles ``HistoryBuffer._statistics_methods`` as ``getattr(HistoryBuffer, 'mean')``
    and so on; any other attribute lookup from a checkpoint is refused.
    """
    from mmengine.logging import HistoryBuffer

    # The built-in four are registered lazily (on the first HistoryBuffer()), so name them here.
    known = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in known:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({owner!r}, {name!r}): refused')


def load_from_local_safely(filename: str, map_location=None):
    """mmengine's local checkpoint loader, under the rule in this module's docstring."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist: check the path '
                                '(load_from, --resume or init_cfg.checkpoint).')
    try:
        with torch.serialization.safe_globals(_mmengine_checkpoint_data_types()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as safe_error:
        if not is_trusted_checkpoint(filename):
            raise _untrusted(filename, _unsafe_globals(filename),
                             str(safe_error).splitlines()[0]) from safe_error
    except Exception as error:  # truncated zip, garbage bytes, EOF: torch raises many kinds
        raise _unreadable(filename, error) from None
    try:
        return torch.load(filename, map_location=map_location, weights_only=False)
    except pickle.UnpicklingError:
        raise
    except Exception as error:
        raise _unreadable(filename, error) from None


def check_checkpoint(filename: str) -> None:
    """Fail fast, without loading anything, on a checkpoint that :func:`load_from_local_safely`
    would refuse: missing, visibly truncated, or (by a static scan of its pickle) needing
    objects beyond plain data while nobody trusts it. Our tools call this before building a
    Runner; passing it does not replace the checks of the load itself."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist: check the path.')
    if not is_complete_checkpoint(filename):
        raise _unreadable(filename, 'the file is empty or its zip directory is missing')
    needs = _unsafe_globals(filename)
    if needs and not is_trusted_checkpoint(filename):
        raise _untrusted(filename, needs)


def _untrusted(filename: str, needs: List[str], torch_said: Optional[str] = None):
    needs = f' (it needs {", ".join(needs)})' if needs else ''
    said = f' Torch said: {torch_said}' if torch_said else ''
    return UntrustedCheckpointError(
        f'Refusing to unpickle {filename}: it holds Python objects beyond tensors and plain '
        f'data{needs}, and unpickling those can execute code. If you trust this file, pass '
        f'--trust-checkpoint {filename} to our tools, call '
        f'convnext_backbone.compat.trust_checkpoint({filename!r}), or add it to ${TRUST_ENV}.'
        + said)


def _unreadable(filename: str, error):
    from .checkpoint.errors import CheckpointReadError
    if isinstance(error, Exception):
        why = (str(error).strip().splitlines() or [''])[0][:200]
        error = f'{type(error).__name__}: {why}' if why else type(error).__name__
    return CheckpointReadError(
        f'Checkpoint {filename} is not readable ({error}). It is probably truncated: a copy or '
        'download that did not finish, or a save interrupted by a kill (saves through '
        'convnext_backbone are atomic, so our training runs never leave one). Resume or load '
        'from another checkpoint (e.g. the previous epoch_N.pth / iter_N.pth of the work dir) '
        'or get the file again.')


def _save_and_trust(checkpoint, filename, file_client_args=None, backend_args=None):
    """mmengine's ``save_checkpoint``, atomic for local files (fix 4); what it writes is trusted."""
    save = ORIGINALS['save_checkpoint']
    if not _is_local(filename, file_client_args, backend_args):
        save(checkpoint, filename, file_client_args=file_client_args, backend_args=backend_args)
        return
    filename = os.fspath(filename)
    with _atomic_target(filename) as temporary:
        save(checkpoint, temporary, file_client_args=file_client_args, backend_args=backend_args)
    trust_checkpoint(filename)


@_fix
def safe_checkpoint_loading() -> None:
    from mmengine.runner import checkpoint as ckpt_module
    from mmengine.runner import runner as runner_module
    ORIGINALS['load_from_local'] = ckpt_module.CheckpointLoader._schemes['']
    ckpt_module.CheckpointLoader.register_scheme('', load_from_local_safely, force=True)
    import mmengine.runner as runner_package
    ORIGINALS['save_checkpoint'] = ckpt_module.save_checkpoint
    for module in (ckpt_module, runner_module, runner_package):
        module.save_checkpoint = _save_and_trust


# 2. Package lookup for 'mmdet::' / 'mmseg::' configs ---------------------------------------------

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


@_fix
def package_lookup_without_pkg_resources() -> None:
    import mmengine.config.config as config_module
    import mmengine.utils as utils_module
    ORIGINALS['is_installed'] = config_module.is_installed
    ORIGINALS['get_installed_path'] = config_module.get_installed_path
    for module in (config_module, utils_module):
        module.is_installed = is_installed
        module.get_installed_path = get_installed_path


# 3. Distributed runs without a GPU ---------------------------------------------------------------

@contextlib.contextmanager
def _cuda_set_device_skipped() -> Iterator[None]:
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def init_dist(launcher, backend='nccl', init_backend='torch', **kwargs) -> None:
    """mmengine's ``init_dist``; on a machine without CUDA it runs on gloo and skips set_device."""
    original = ORIGINALS['init_dist']
    if torch.cuda.is_available():
        return original(launcher, backend=backend, init_backend=init_backend, **kwargs)
    if backend == 'nccl':
        from mmengine.logging import print_log
        print_log('No CUDA device: distributed backend nccl -> gloo.', logger='current')
        backend = 'gloo'
    with _cuda_set_device_skipped():
        return original(launcher, backend=backend, init_backend=init_backend, **kwargs)


def _ddp_init_without_device_ids_on_cpu(self, module, *args, **kwargs):
    on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
    if on_cpu and kwargs.get('device_ids') is not None:
        kwargs['device_ids'] = None
    ORIGINALS['MMDistributedDataParallel.__init__'](self, module, *args, **kwargs)


@_fix
def cpu_distributed() -> None:
    import mmengine.dist as dist_module
    import mmengine.dist.utils as dist_utils
    import mmengine.runner.runner as runner_module
    from mmengine.model import MMDistributedDataParallel
    ORIGINALS['init_dist'] = dist_utils.init_dist
    for module in (dist_utils, dist_module, runner_module):
        module.init_dist = init_dist
    ORIGINALS['MMDistributedDataParallel.__init__'] = MMDistributedDataParallel.__init__
    MMDistributedDataParallel.__init__ = _ddp_init_without_device_ids_on_cpu


# 4. Checkpoints that survive a kill ---------------------------------------------------------------

def _save_checkpoint_with_step_then_clean(self, runner, step, meta):
    """CheckpointHook's save, with outdated checkpoints removed only once the new one and
    ``last_checkpoint`` are on disk."""
    backend = self.file_backend
    deferred = _DeferredRemoval(backend)
    self.file_backend = deferred
    try:
        ORIGINALS['CheckpointHook._save_checkpoint_with_step'](self, runner, step, meta)
    finally:
        self.file_backend = backend
    from mmengine.dist import is_main_process
    if not is_main_process():
        return
    last = getattr(self, 'last_ckpt', None)
    save_file = osp.join(runner.work_dir, 'last_checkpoint')
    if last and osp.isfile(save_file):
        write_atomically(save_file, last)  # the hook wrote it in place; now it is also synced
    for remove in deferred.pending:
        remove()


@_fix
def crash_safe_checkpoints() -> None:
    import mmengine.runner as runner_package
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import _flexible_runner
    from mmengine.runner import checkpoint as ckpt_module
    from mmengine.runner import runner as runner_module
    ORIGINALS['find_latest_checkpoint'] = ckpt_module.find_latest_checkpoint
    for module in (ckpt_module, runner_module, runner_package, _flexible_runner):
        module.find_latest_checkpoint = find_latest_checkpoint
    ORIGINALS['CheckpointHook._save_checkpoint_with_step'] = \
        CheckpointHook._save_checkpoint_with_step
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step_then_clean


apply()
