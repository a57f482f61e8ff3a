"""Reading and writing state dicts without ever executing code from the file.

``read_state_dict`` accepts torch files (``.pth .pt .bin .ckpt`` and anything else torch can
save) and ``.safetensors``. Torch files are read with ``torch.load(weights_only=True)``, whose
unpickler only rebuilds tensors and plain containers. Training checkpoints often carry, next to
the weights, bookkeeping objects that this unpickler refuses (mmengine's ``message_hub`` with
``HistoryBuffer`` and numpy scalars, the official scripts' ``argparse.Namespace``). For globals
from a short list of such known sources we hand the unpickler an *inert placeholder* class under
that name: it accepts any arguments and state and does nothing, so no code from the file runs and
the weights still load. Any other global (a pickled model class, ``os.system``...) is refused with
:class:`UnsafeCheckpointError`, which says how to re-save the weights if the file is trusted.

Wrapper keys: a checkpoint is usually a dict holding the state dict under some key. We take the
first present of :data:`STATE_DICT_KEYS` (``state_dict`` for mmengine/mmdet/mmseg/mmpretrain/
Lightning, ``model`` for the official ConvNeXt/ConvNeXt-V2 and FCMAE scripts, ``module``), and
only then the EMA copies (``model_ema``, ``state_dict_ema``): the raw weights are the default and
``key='model_ema'`` picks the EMA weights explicitly. Unwrapping repeats for nested wrappers.
"""
import os
import pickle
import re
from collections.abc import Mapping
from typing import Dict, List, Optional

import torch

from .errors import CheckpointReadError, UnsafeCheckpointError

#: Keys under which checkpoints keep their state dict, in the order they are tried.
STATE_DICT_KEYS = ('state_dict', 'model', 'module', 'model_ema', 'state_dict_ema')

#: Globals (module prefixes or exact names) replaced by inert placeholders when a torch file
#: needs them: bookkeeping of training runs that sits beside the weights. Placeholders run no code.
INERT_GLOBALS = ('mmengine.', 'mmcv.', 'mmdet.', 'mmseg.', 'mmpretrain.', 'mmcls.', 'numpy.',
                 'argparse.Namespace', 'builtins.getattr')

_UNSUPPORTED_GLOBAL = re.compile(r'GLOBAL (\S+) was not an allowed global')
_BLOCKED_GLOBAL = re.compile(r'unsupported GLOBAL (\S+) whose module')
_CODE_NEEDED = ('Trying to call reduce', 'Can only build', 'Can only create new object',
                'whose module')
_MAX_PLACEHOLDERS = 64


class _Inert:
    """Placeholder for a non-weight object in a checkpoint: accepts anything, keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _placeholder(full_name: str) -> type:
    return type(full_name.rsplit('.', 1)[-1], (_Inert,), {'__module__': __name__,
                                                          'placeholder_for': full_name})


def _is_inert(full_name: str) -> bool:
    return any(full_name == g or (g.endswith('.') and full_name.startswith(g))
               for g in INERT_GLOBALS)


def _unsafe_message(path: str, names) -> str:
    return (
        f'{path}: refusing to load: the file pickles Python objects ({", ".join(names)}) that '
        'cannot be rebuilt without executing code from the file, and checkpoints are only read '
        'with torch.load(weights_only=True) or safetensors. If you trust the file, re-save just '
        "its weights in a separate Python session, e.g.\n"
        "  ckpt = torch.load(SRC, weights_only=False)\n"
        "  sd = ckpt.state_dict() if hasattr(ckpt, 'state_dict') else "
        "ckpt.get('state_dict', ckpt.get('model', ckpt))\n"
        "  torch.save({'state_dict': sd}, DST)\n"
        'then use DST (tools/convert_checkpoint.py DST OUT.safetensors writes a safetensors copy).')


def _first_sentence(message) -> str:
    text = str(message).strip().splitlines()[0] if str(message).strip() else 'no details'
    end = text.find('. ')
    return (text[:end] if 0 < end < 200 else text[:200]).rstrip('.')


def _not_readable(path: str, why: str) -> CheckpointReadError:
    return CheckpointReadError(f'{path} is not a readable checkpoint ({why}). The file may be '
                               'truncated (an interrupted download) or not a torch/safetensors '
                               'checkpoint at all.')


def _globals_needed(path: str) -> List[str]:
    """The non-default globals of a zip-format torch file, found by scanning its pickle
    statically (nothing is loaded or run); [] when the scan is not possible (legacy format)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # legacy/non-zip files, or a torch without the scanner
        return []


def _torch_load(path: str):
    """``torch.load(weights_only=True)`` with inert placeholders for known bookkeeping globals.

    Zip-format files are scanned first, so one load suffices and every offending global is named;
    for legacy files the globals are learnt one load attempt at a time.
    """
    needed = _globals_needed(path)
    unsafe = [name for name in needed if not _is_inert(name)]
    if unsafe:
        raise UnsafeCheckpointError(_unsafe_message(path, unsafe))
    placeholders: Dict[str, type] = {name: _placeholder(name) for name in needed}
    while True:
        try:
            with torch.serialization.safe_globals(
                    [(cls, name) for name, cls in placeholders.items()]):
                return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as exc:
            message = str(exc)
            match = _UNSUPPORTED_GLOBAL.search(message) or _BLOCKED_GLOBAL.search(message)
            if match is None:
                if any(s in message for s in _CODE_NEEDED):
                    raise UnsafeCheckpointError(
                        _unsafe_message(path, ['objects that need code'])) from None
                raise _not_readable(path, _first_sentence(message.splitlines()[-1])) from None
            name = match.group(1)
            if '.' not in name:  # torch prints builtins without their module
                name = f'builtins.{name}'
            if not _is_inert(name) or name in placeholders \
                    or len(placeholders) >= _MAX_PLACEHOLDERS:
                raise UnsafeCheckpointError(_unsafe_message(path, [name])) from None
            placeholders[name] = _placeholder(name)
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as exc:  # truncated zip, garbage bytes, EOF: torch raises many kinds
            raise _not_readable(path, f'{type(exc).__name__}: {_first_sentence(exc)}') from None


def _looks_like_safetensors(path: str) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length and then '{'."""
    with open(path, 'rb') as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b'{' and \
        int.from_bytes(head[:8], 'little') < os.path.getsize(path)


def _safetensors_load(path: str) -> Dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointReadError(f'{path}: reading .safetensors files needs the safetensors '
                                  'package (pip install safetensors).') from None
    try:
        return load_file(path, device='cpu')
    except Exception as exc:  # safetensors raises its own SafetensorError (and others)
        raise _not_readable(path, f'safetensors: {_first_sentence(exc)}') from None


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and any(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_state_dict(obj, key: Optional[str] = None, source: str = 'checkpoint'
                      ) -> Dict[str, torch.Tensor]:
    """Find the state dict inside a loaded checkpoint object (see the module docstring).

    ``key`` selects the wrapper explicitly (e.g. ``'model_ema'``). Only tensor entries are kept.
    """
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            have = list(obj)[:20] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointReadError(f'{source}: no {key!r} entry in the checkpoint (it has '
                                      f'{have}).')
        obj = obj[key]
    for _ in range(4):  # nested wrappers, e.g. {'state_dict': {'model': {...}}}
        if not isinstance(obj, Mapping) or _is_state_dict(obj):
            break
        inner = next((obj[k] for k in STATE_DICT_KEYS
                      if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not _is_state_dict(obj):
        what = f'top-level keys {list(obj)[:20]}' if isinstance(obj, Mapping) \
            else f'a {type(obj).__name__}'
        raise CheckpointReadError(f'{source} holds no state dict of tensors ({what}); expected '
                                  f'a dict of tensors, possibly under one of {STATE_DICT_KEYS}.')
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def fetch_url(url: str) -> str:
    """The local copy of a checkpoint URL (torch hub's cache: downloaded once, then reused).

    Configs name the official weights by URL; a machine without network access gets an error
    that says where to put a manually downloaded copy.
    """
    from urllib.parse import urlparse
    cache = os.path.join(torch.hub.get_dir(), 'checkpoints')
    local = os.path.join(cache, os.path.basename(urlparse(url).path))
    if os.path.isfile(local):
        return local
    os.makedirs(cache, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, local, progress=False)
    except Exception as exc:  # no network, HTTP errors, interrupted transfers
        raise CheckpointReadError(
            f'Could not download {url} ({type(exc).__name__}: {_first_sentence(exc)}). Download '
            f'it yourself and put it at {local}, or point the config at a local copy: '
            '--cfg-options model.backbone.init_cfg.checkpoint=PATH') from None
    return local


def read_state_dict(path, key: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Read a checkpoint file and return its (unwrapped) state dict of CPU tensors.

    ``path`` may be an http(s) URL (see :func:`fetch_url`). Raises ``FileNotFoundError`` for a
    missing path, :class:`CheckpointReadError` for a file that
    is not a readable checkpoint, :class:`UnsafeCheckpointError` for one whose loading would
    execute code. Key names are returned as stored (no conversion; see ``convert_state_dict``).
    """
    path = os.fspath(path)
    if path.startswith(('http://', 'https://')):
        path = fetch_url(path)
    if not os.path.isfile(path):
        what = 'is a directory, not a checkpoint file' if os.path.isdir(path) else 'does not exist'
        raise FileNotFoundError(
            2, f'Checkpoint file {path!r} {what}: check the path (e.g. '
            'model.backbone.init_cfg.checkpoint, or --cfg-options model.backbone.init_cfg=None '
            'to train from scratch)', path)
    if os.path.getsize(path) == 0:
        raise _not_readable(path, 'the file is empty')
    if path.endswith('.safetensors') or _looks_like_safetensors(path):
        obj = _safetensors_load(path)
    else:
        obj = _torch_load(path)
    return unwrap_state_dict(obj, key=key, source=path)


def save_state_dict(state_dict: Mapping, path, metadata: Optional[Mapping] = None) -> None:
    """Write a state dict: safetensors for ``*.safetensors``, else torch ``{'state_dict': ...}``.

    ``metadata`` (str -> str) goes into the safetensors header or the torch file's ``meta``; both
    files read back with ``read_state_dict`` and load with ``torch.load(weights_only=True)``.
    """
    path = os.fspath(path)
    tensors = {k: v.detach().cpu() for k, v in state_dict.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise CheckpointReadError('writing .safetensors files needs the safetensors package '
                                      '(pip install safetensors).') from None
        # Own contiguous storage per tensor: safetensors refuses views sharing memory.
        save_file({k: v.contiguous().clone() for k, v in tensors.items()}, path,
                  metadata={'format': 'pt', **meta})
    else:
        torch.save({'state_dict': tensors, 'meta': meta}, path)
