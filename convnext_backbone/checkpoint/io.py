"""Reading and writing state dicts without ever executing code from the file.

``read_state_dict`` accepts torch files (``.pth .pt .bin .ckpt`` and anything else torch can
save) and ``.safetensors``. Torch files are read for their weights under the package's one
safe-loading policy (:mod:`.safety`): training bookkeeping beside the weights loads as inert
placeholders, anything needing code is refused unless the user trusts the file.

Wrapper keys: a checkpoint is usually a dict holding the state dict under some key. We take the
first present of :data:`STATE_DICT_KEYS` (``state_dict`` for mmengine/mmdet/mmseg/mmpretrain/
Lightning, ``model`` for the official ConvNeXt/ConvNeXt-V2 and FCMAE scripts, ``module``), and
only then the EMA copies (``model_ema``, ``state_dict_ema``): the raw weights are the default and
``key='model_ema'`` picks the EMA weights explicitly. Unwrapping repeats for nested wrappers.

safetensors files holding int/bool tensors under weight names (``*.weight``, ``*.bias``,
``gamma``...) are refused: copied into float parameters they would load as whole numbers.
"""
import os
import re
from collections.abc import Mapping
from typing import Dict, Optional

import torch

from .download import download, is_url
from .errors import CheckpointMismatchError, CheckpointReadError, DownloadError
from .safety import first_sentence, load_weights_file, unreadable

#: Keys under which checkpoints keep their state dict, in the order they are tried.
STATE_DICT_KEYS = ('state_dict', 'model', 'module', 'model_ema', 'state_dict_ema')


def _looks_like_safetensors(path: str) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length and then '{'."""
    with open(path, 'rb') as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b'{' and \
        int.from_bytes(head[:8], 'little') < os.path.getsize(path)


#: Tensor names that are always floating-point weights (counters such as BatchNorm's
#: ``num_batches_tracked`` are legitimately integers and are left alone).
_WEIGHT_NAME = re.compile(r'(^|\.)(weight|bias|gamma|beta|kernel)$')


def _refuse_non_floating_weights(path: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """An int/bool tensor under a weight name would be copied into a float parameter as whole
    numbers (0/1 for bool) without any error: refuse the file instead."""
    bad = [(k, v.dtype) for k, v in tensors.items()
           if _WEIGHT_NAME.search(k) and not v.is_floating_point()]
    if bad:
        key, dtype = bad[0]
        raise CheckpointMismatchError(
            f'{path}: {len(bad)} weight tensors are not floating-point (e.g. {key} is {dtype}); '
            'loading them would silently turn the weights into whole numbers (zeros and ones '
            'for bool). The file was probably written with a wrong cast: re-export it with the '
            'weights in float32/float16/bfloat16, or use the original checkpoint.',
            mismatched=[(k, dtype, 'floating point') for k, dtype in bad])


def _safetensors_load(path: str) -> Dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointReadError(f'{path}: reading .safetensors files needs the safetensors '
                                  'package (pip install safetensors).') from None
    try:
        tensors = load_file(path, device='cpu')
    except Exception as exc:  # safetensors raises its own SafetensorError (and others)
        raise unreadable(path, f'safetensors: {first_sentence(exc)}') from None
    _refuse_non_floating_weights(path, tensors)
    return tensors


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
    """The local copy of a checkpoint URL (torch hub's cache: downloaded once, complete or not at
    all, then reused; see :mod:`.download`).

    Configs name the official weights by URL; a machine without network access gets an error
    that says where to put a manually downloaded copy.
    """
    try:
        return download(url)
    except DownloadError as error:
        raise DownloadError(f'{error} For a pretrained backbone: --cfg-options '
                            'model.backbone.init_cfg.checkpoint=PATH') from None


def read_state_dict(path, key: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Read a checkpoint file and return its (unwrapped) state dict of CPU tensors.

    ``path`` may be an http(s) URL (see :func:`fetch_url`). Raises ``FileNotFoundError`` for a
    missing path, :class:`CheckpointReadError` for a file that
    is not a readable checkpoint, :class:`UnsafeCheckpointError` for one whose loading would
    execute code. Key names are returned as stored (no conversion; see ``convert_state_dict``).
    """
    path = os.fspath(path)
    if is_url(path):
        path = fetch_url(path)
    if not os.path.isfile(path):
        what = 'is a directory, not a checkpoint file' if os.path.isdir(path) else 'does not exist'
        raise FileNotFoundError(
            2, f'Checkpoint file {path!r} {what}: check the path (e.g. '
            'model.backbone.init_cfg.checkpoint, or --cfg-options model.backbone.init_cfg=None '
            'to train from scratch)', path)
    if os.path.getsize(path) == 0:
        raise unreadable(path, 'the file is empty')
    if path.endswith('.safetensors') or _looks_like_safetensors(path):
        obj = _safetensors_load(path)
    else:
        obj = load_weights_file(path)
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
