"""Which ConvNeXt checkpoint layout a state dict uses, told apart by its key names alone.

=============  =====================================================================================
``official``   facebookresearch ConvNeXt / ConvNeXt-V2 (and their det/seg backbones, unprefixed):
               ``downsample_layers.i.k``, ``stages.i.j.{dwconv,norm,pwconv1,pwconv2,gamma,grn}``,
               ``norm.*`` (final norm), ``head.*``. This is also our own naming.
``timm``       ``stem.{0,1}``, ``stages.i.downsample.{0,1}``, ``stages.i.blocks.j.{conv_dw,norm,
               mlp.fc1,mlp.grn,mlp.fc2,gamma}``, ``head.{norm,fc}`` / ``norm_pre``; also the
               ``features_only`` wrapper's flattened ``stem_0`` / ``stages_1`` names.
``mmpretrain`` mmpretrain's ConvNeXt: ``backbone.`` + ``stages.i.j.{depthwise_conv,
               pointwise_conv1,pointwise_conv2,...}``, ``backbone.norm{i}``, classifier ``head.*``.
``fcmae``      ConvNeXt-V2 FCMAE pre-training: ``encoder.`` + MinkowskiEngine names (``*.kernel``,
               ``*.ln.*``, ``*.linear.*``) beside ``decoder``/``proj``/``pred``/``mask_token``.
``detector``   a whole mmdet/mmseg model (or any model) with the backbone under ``backbone.`` and
               necks/heads beside it; the backbone part is in one of the layouts above.
=============  =====================================================================================
"""
import re
from typing import Iterable, Optional

from .errors import UnknownCheckpointFormatError

FORMATS = ('official', 'timm', 'mmpretrain', 'fcmae', 'detector')
BACKBONE_FORMATS = ('official', 'timm', 'mmpretrain', 'fcmae')

_FCMAE = re.compile(r'^(encoder\.)?(downsample_layers|stages)\.\d+\.\d+\.'
                    r'(.*\.)?(kernel|ln\.weight|linear\.weight)$')
_TIMM = re.compile(r'^(stem[._]\d+\.|stages[._]\d+\.(blocks|downsample)\.)')
_MMPRETRAIN = re.compile(r'^stages\.\d+\.\d+\.(depthwise_conv|pointwise_conv[12])\.')
_OFFICIAL = re.compile(r'^(stages\.\d+\.\d+\.(dwconv|pwconv[12])\.|downsample_layers\.\d+\.\d+\.)')

#: Top-level keys that may sit beside ``backbone.*`` in an mmpretrain *classifier* checkpoint.
_CLASSIFIER_PARTS = ('head.', 'neck.', 'data_preprocessor.')


def backbone_format(keys: Iterable[str]) -> Optional[str]:
    """The layout of unprefixed backbone keys, or None when none matches."""
    keys = list(keys)
    for fmt, pattern in (('fcmae', _FCMAE), ('timm', _TIMM), ('mmpretrain', _MMPRETRAIN),
                         ('official', _OFFICIAL)):
        if any(pattern.match(k) for k in keys):
            return fmt
    return None


def detect_format(state_dict) -> str:
    """Return one of :data:`FORMATS` for a state dict (a mapping of key -> tensor).

    Raises :class:`UnknownCheckpointFormatError` listing some keys when no layout matches.
    """
    keys = list(state_dict)
    if any(k.startswith('encoder.') for k in keys) and \
            backbone_format(k for k in keys if k.startswith('encoder.')) == 'fcmae':
        return 'fcmae'
    backbone = [k[len('backbone.'):] for k in keys if k.startswith('backbone.')]
    if backbone:
        inner = backbone_format(backbone)
        others = [k for k in keys if not k.startswith(('backbone.',) + _CLASSIFIER_PARTS)]
        return 'mmpretrain' if inner == 'mmpretrain' and not others else 'detector'
    fmt = backbone_format(keys)
    if fmt is None:
        shown = ', '.join(keys[:8]) + (', ...' if len(keys) > 8 else '')
        raise UnknownCheckpointFormatError(
            f'Cannot tell which ConvNeXt checkpoint format this is: no key looks like the '
            f'official, timm, mmpretrain or FCMAE ConvNeXt layout, and none starts with '
            f"'backbone.' ({len(keys)} keys: {shown}). If the weights sit under another prefix, "
            "pass prefix='that.prefix.' (init_cfg=dict(type='Pretrained', checkpoint=..., "
            "prefix=...)).")
    return fmt
