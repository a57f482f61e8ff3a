"""Everything about checkpoint files, under one safe-loading policy.

Pretrained weights (a backbone's ``init_cfg``, ``tools/convert_checkpoint.py``):

* ``io``       - ``read_state_dict`` / ``save_state_dict``: torch files and safetensors; wrapper
  keys unwrapped.
* ``formats``  - ``detect_format``: official / timm / mmpretrain / fcmae / detector, from key names.
* ``convert``  - ``convert_state_dict``: one pure converter per source, to our (official) naming.
* ``loading``  - ``load_pretrained`` and its ``LoadReport``; ``CheckpointMismatchError`` when the
  weights do not fit the backbone's arch.

Training checkpoints (resume, ``load_from``, testing):

* ``compatibility`` - ``check_model_checkpoint``: a whole-model checkpoint against the model
  (keys, shapes, dtypes), one line naming what the checkpoint looks like; partial loads.
* ``files``    - atomic writes, completeness, the newest complete checkpoint of a work dir, the
  check of a checkpoint named on a tool's command line.

Released models and URLs (``tools/test.py CONFIG released``, any ``http(s)://`` checkpoint):

* ``released`` - the paper's released weights per config, read from the model index
  (``Weights``); ``checkpoint_argument``: a tool's checkpoint argument (``released``, a URL or a
  path) as a checked local file; ``$CONVNEXT_RELEASE_BASE`` (a mirror), ``$CONVNEXT_MODEL_INDEX``.
* ``download`` - a URL downloaded once into torch hub's cache, complete or not at all, with
  progress; one line naming the file, the URL and the cache path when it cannot be.

Both:

* ``safety``   - the one policy for reading torch files (no code from a file runs unless the user
  trusts it) and the package's only ``torch.load`` calls; ``trust_checkpoint``.
* ``errors``   - one exception class per thing to fix.
"""
from .compatibility import (
                     CompatibilityReport,
                     check_model_checkpoint,
                     describe_checkpoint,
                     describe_model_state,
)
from .convert import ConvertedStateDict, convert_state_dict
from .download import cache_path, download, load_checkpoint_url
from .errors import (
                     CheckpointError,
                     CheckpointMismatchError,
                     CheckpointReadError,
                     DownloadError,
                     NoReleasedWeightsError,
                     UnknownCheckpointFormatError,
                     UnsafeCheckpointError,
                     UntrustedCheckpointError,
)
from .files import (
                     check_checkpoint_file,
                     find_latest_checkpoint,
                     is_complete_checkpoint,
                     write_atomically,
)
from .formats import BACKBONE_FORMATS, FORMATS, detect_format
from .io import STATE_DICT_KEYS, read_state_dict, save_state_dict, unwrap_state_dict
from .loading import LoadReport, describe_arch, load_pretrained
from .released import (
                     MODEL_INDEX_ENV,
                     RELEASE_BASE_ENV,
                     RELEASED,
                     Release,
                     checkpoint_argument,
                     find_release,
                     released_weights,
                     releases,
)
from .safety import (
                     TRUST_ENV,
                     check_checkpoint,
                     is_trusted_checkpoint,
                     load_checkpoint_file,
                     trust_checkpoint,
)

__all__ = [
    'read_state_dict', 'save_state_dict', 'unwrap_state_dict', 'STATE_DICT_KEYS',
    'detect_format', 'FORMATS', 'BACKBONE_FORMATS',
    'convert_state_dict', 'ConvertedStateDict',
    'load_pretrained', 'LoadReport', 'describe_arch',
    'check_model_checkpoint', 'CompatibilityReport', 'describe_model_state', 'describe_checkpoint',
    'download', 'cache_path', 'load_checkpoint_url',
    'RELEASED', 'RELEASE_BASE_ENV', 'MODEL_INDEX_ENV', 'Release', 'releases', 'find_release',
    'released_weights', 'checkpoint_argument',
    'check_checkpoint_file', 'find_latest_checkpoint', 'is_complete_checkpoint',
    'write_atomically',
    'TRUST_ENV', 'check_checkpoint', 'is_trusted_checkpoint', 'load_checkpoint_file',
    'trust_checkpoint',
    'CheckpointError', 'CheckpointReadError', 'UnsafeCheckpointError',
    'UntrustedCheckpointError', 'UnknownCheckpointFormatError', 'CheckpointMismatchError',
    'DownloadError', 'NoReleasedWeightsError',
]
