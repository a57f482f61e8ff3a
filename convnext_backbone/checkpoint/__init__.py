"""ConvNeXt checkpoints: read safely, detect the layout, convert to our naming, load strictly.

One concern per module:

* ``io``       - ``read_state_dict`` / ``save_state_dict``: torch files with
  ``weights_only=True`` (never executing pickled code) and safetensors; wrapper keys unwrapped.
* ``formats``  - ``detect_format``: official / timm / mmpretrain / fcmae / detector, from key names.
* ``convert``  - ``convert_state_dict``: one pure converter per source, to our (official) naming.
* ``loading``  - ``load_pretrained`` and its ``LoadReport``; ``CheckpointMismatchError`` when the
  weights do not fit the backbone's arch.

Typical use is through the backbone's ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``, or
``tools/convert_checkpoint.py SRC DST`` to write a converted (optionally safetensors) file.
"""
from .convert import ConvertedStateDict, convert_state_dict
from .errors import (CheckpointError, CheckpointMismatchError, CheckpointReadError,
                     UnknownCheckpointFormatError, UnsafeCheckpointError)
from .formats import BACKBONE_FORMATS, FORMATS, detect_format
from .io import STATE_DICT_KEYS, read_state_dict, save_state_dict, unwrap_state_dict
from .loading import LoadReport, describe_arch, load_pretrained

__all__ = [
    'read_state_dict', 'save_state_dict', 'unwrap_state_dict', 'STATE_DICT_KEYS',
    'detect_format', 'FORMATS', 'BACKBONE_FORMATS',
    'convert_state_dict', 'ConvertedStateDict',
    'load_pretrained', 'LoadReport', 'describe_arch',
    'CheckpointError', 'CheckpointReadError', 'UnsafeCheckpointError',
    'UnknownCheckpointFormatError', 'CheckpointMismatchError',
]
