"""The one safe-loading policy for every torch file convnext_backbone reads.

Unpickling a torch file can execute code from it. The policy, for pretrained weights and
training checkpoints alike (this module holds the package's only ``torch.load`` calls):

1. Plain data always loads: tensors, containers, and the plain-data classes mmengine writes into
   a runner checkpoint's ``message_hub`` and ``meta`` (``HistoryBuffer`` and the
   ``getattr(HistoryBuffer, <statistics method>)`` it pickles, numpy arrays, scalars and dtypes),
   read with ``torch.load(weights_only=True)`` allowing just those, for that one call.
2. Where only the weights are wanted (:func:`load_weights_file`: pretrained backbones, checkpoint
   conversion), other bookkeeping from known sources (:data:`INERT_GLOBALS`: OpenMMLab classes,
   the official scripts' ``argparse.Namespace``) is rebuilt as inert placeholders that accept
   anything and run nothing, so the weights still load.
3. Anything else needs code to run. Such a file is unpickled in full only when it is trusted: this
   process wrote it, or the user vouched for it or a folder holding it (:func:`trust_checkpoint`,
   our tools' ``--trust-checkpoint``, the ``CONVNEXT_TRUSTED_CHECKPOINTS`` environment variable,
   paths separated by ``os.pathsep``). Otherwise it is refused with one message naming what it
   needs and how to trust or re-save it.
4. A file that is not readable (truncated, corrupt, not a checkpoint) is one
   :class:`CheckpointReadError` naming the file.

Zip-format files are scanned statically first (nothing is loaded or run), so a refusal names
every offending global; :func:`check_checkpoint` runs that scan alone, for tools that want to
fail in a second, before building a model.
"""
import os
import os.path as osp
import pickle
import re
from typing import Dict, List, Optional, Set

import torch

from .errors import CheckpointReadError, UntrustedCheckpointError

TRUST_ENV = 'CONVNEXT_TRUSTED_CHECKPOINTS'

#: Globals (module prefixes or exact names) rebuilt as inert placeholders when only the weights
#: of a file are wanted: bookkeeping of training runs that sits beside the weights.
INERT_GLOBALS = ('mmengine.', 'mmcv.', 'mmdet.', 'mmseg.', 'mmpretrain.', 'mmcls.', 'numpy.',
                 'argparse.Namespace', 'builtins.getattr')

_trusted_paths: Set[str] = set()
_UNSUPPORTED_GLOBAL = re.compile(r'GLOBAL (\S+) was not an allowed global')
_BLOCKED_GLOBAL = re.compile(r'unsupported GLOBAL (\S+) whose module')
_CODE_NEEDED = ('Trying to call reduce', 'Can only build', 'Can only create new object',
                'whose module')
_MAX_PLACEHOLDERS = 64


# Trust --------------------------------------------------------------------------------------------

def trust_checkpoint(path: str) -> None:
    """Vouch for a checkpoint file, or for every file under a folder, for this process."""
    _trusted_paths.add(osp.realpath(osp.expanduser(os.fspath(path))))


def is_trusted_checkpoint(path: str) -> bool:
    """Whether ``path`` was written by this process or vouched for by the user."""
    real = osp.realpath(osp.expanduser(os.fspath(path)))
    vouched = set(_trusted_paths)
    vouched.update(osp.realpath(p) for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p)
    return any(real == p or real.startswith(p.rstrip(os.sep) + os.sep) for p in vouched)


# What plain data is ------------------------------------------------------------------------------

def _history_buffer_method(owner, name):
    """The one ``getattr`` a runner checkpoint needs: a HistoryBuffer's statistics method
    (mmengine pickles them as ``getattr(HistoryBuffer, 'mean')``); anything else is refused."""
    from mmengine.logging import HistoryBuffer

    # The built-in four are registered lazily (on the first HistoryBuffer()), so name them here.
    known = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in known:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({owner!r}, {name!r}): refused')


def plain_data_types() -> List:
    """The classes rule 1 allows: what mmengine writes into checkpoints besides tensors."""
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


def _plain_data_names() -> Set[str]:
    return {entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}'
            for entry in plain_data_types()}


def globals_needed(path: str) -> List[str]:
    """The globals beyond tensors and containers that a zip-format torch file needs, by a static
    scan of its pickle (nothing is loaded or run); [] when the scan is not possible (legacy)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # legacy (non-zip) files raise all kinds of errors here
        return []


def _is_inert(full_name: str) -> bool:
    return any(full_name == g or (g.endswith('.') and full_name.startswith(g))
               for g in INERT_GLOBALS)


class _Inert:
    """Placeholder for a non-weight object in a checkpoint: accepts anything, keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _placeholder(full_name: str) -> type:
    return type(full_name.rsplit('.', 1)[-1], (_Inert,), {'__module__': __name__,
                                                          'placeholder_for': full_name})


# Errors ------------------------------------------------------------------------------------------

def first_sentence(message) -> str:
    """The first sentence of an exception's text, at most 200 characters."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else 'no details'
    end = text.find('. ')
    return (text[:end] if 0 < end < 200 else text[:200]).rstrip('.')


def unreadable(path: str, why) -> CheckpointReadError:
    """The one error for a file that is there but cannot be read as a checkpoint."""
    if isinstance(why, BaseException):
        why = f'{type(why).__name__}: {first_sentence(why)}'
    return CheckpointReadError(
        f'{path} is not a readable checkpoint ({why}). It is probably truncated (an interrupted '
        'download or copy, or a save killed midway; saves through convnext_backbone are atomic) '
        'or not a torch/safetensors checkpoint at all: get the file again, or use another one '
        '(e.g. the previous epoch_N.pth / iter_N.pth of the work dir).')


def refused(path: str, needs: List[str], torch_said: Optional[str] = None
            ) -> UntrustedCheckpointError:
    """The one error for a file whose loading would execute code and nobody trusts."""
    needs_text = ', '.join(needs) if needs else 'objects that need code'
    said = f' (torch said: {torch_said})' if torch_said else ''
    return UntrustedCheckpointError(
        f'{path}: refusing to load: the file pickles Python objects ({needs_text}) that cannot be '
        f'rebuilt without executing code from the file{said}. If you trust the file, pass '
        f'--trust-checkpoint {path} to our tools, call convnext_backbone.checkpoint.'
        f'trust_checkpoint({str(path)!r}) or add it to ${TRUST_ENV}; or re-save just its weights '
        "in a separate Python process: torch.save({'state_dict': torch.load(SRC, "
        "weights_only=False)['state_dict']}, DST).")


# Loading -----------------------------------------------------------------------------------------

def _existing(path) -> str:
    path = osp.expanduser(os.fspath(path))
    if not osp.isfile(path):
        what = 'is a folder, not a checkpoint file' if osp.isdir(path) else 'does not exist'
        raise FileNotFoundError(2, f'Checkpoint {path} {what}: check the path (load_from, '
                                '--resume, CHECKPOINT or init_cfg.checkpoint)', path)
    if osp.getsize(path) == 0:
        raise unreadable(path, 'the file is empty')
    return path


def _load_trusted(path: str, map_location):
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except pickle.UnpicklingError:
        raise
    except Exception as error:
        raise unreadable(path, error) from None


def load_checkpoint_file(path, map_location=None):
    """A whole checkpoint (training state included) under rules 1, 3 and 4.

    What mmengine's local checkpoint loader does with it is what resume, ``load_from``,
    ``init_detector`` and ``init_model`` need (``compat`` installs this as that loader).
    """
    path = _existing(path)
    try:
        with torch.serialization.safe_globals(plain_data_types()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as safe_error:
        if not is_trusted_checkpoint(path):
            needs = sorted(set(globals_needed(path)) - _plain_data_names())
            raise refused(path, needs, first_sentence(safe_error)) from None
    except Exception as error:  # truncated zip, garbage bytes, EOF: torch raises many kinds
        raise unreadable(path, error) from None
    return _load_trusted(path, map_location)


def load_weights_file(path):
    """A torch file read for its weights under rules 1-4, on the CPU.

    Zip-format files are scanned first, so one load suffices and every offending global is named;
    for legacy files the globals are learnt one load attempt at a time.
    """
    path = _existing(path)
    allowed = _plain_data_names()
    needed = [name for name in globals_needed(path) if name not in allowed]
    unsafe = [name for name in needed if not _is_inert(name)]
    if unsafe:
        if is_trusted_checkpoint(path):
            return _load_trusted(path, 'cpu')
        raise refused(path, unsafe)
    placeholders: Dict[str, type] = {name: _placeholder(name) for name in needed}
    while True:
        try:
            with torch.serialization.safe_globals(
                    plain_data_types() + [(cls, name) for name, cls in placeholders.items()]):
                return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as error:
            message = str(error)
            match = _UNSUPPORTED_GLOBAL.search(message) or _BLOCKED_GLOBAL.search(message)
            name = match.group(1) if match else None
            if name is not None and '.' not in name:  # torch prints builtins without a module
                name = f'builtins.{name}'
            if name is None and not any(s in message for s in _CODE_NEEDED):
                raise unreadable(path, first_sentence(message.splitlines()[-1])) from None
            if name is not None and _is_inert(name) and name not in placeholders \
                    and len(placeholders) < _MAX_PLACEHOLDERS:
                placeholders[name] = _placeholder(name)
                continue
            if is_trusted_checkpoint(path):
                return _load_trusted(path, 'cpu')
            raise refused(path, [name] if name else []) from None
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as error:
            raise unreadable(path, error) from None


def check_checkpoint(path) -> None:
    """Fail fast, without loading anything, on a file :func:`load_checkpoint_file` would refuse:
    missing, visibly truncated, or needing code (by the static scan) while nobody trusts it.
    Passing it does not replace the checks of the load itself."""
    from .files import is_complete_checkpoint
    path = _existing(path)
    if not is_complete_checkpoint(path):
        raise unreadable(path, 'its zip directory is missing')
    needs = sorted(set(globals_needed(path)) - _plain_data_names())
    if needs and not is_trusted_checkpoint(path):
        raise refused(path, needs)

