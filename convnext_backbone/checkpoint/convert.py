"""Pure functions: a state dict in any known layout -> our (official) backbone naming.

Our naming is the official detection backbone's: ``downsample_layers.i.{0,1}``,
``stages.i.j.{dwconv,norm,pwconv1,pwconv2,gamma,grn.gamma,grn.beta}``, ``norm{i}`` (output norms),
with ``pwconv*`` as Linear weights (out, in), GRN and layer-scale parameters of shape (C,).

Each source has one small converter that renames keys and says which keys it drops on purpose
(classifier heads, the classification final norm, the FCMAE decoder). Keys it does not recognise
are passed through *unchanged*, never dropped, so a stray key surfaces as an "unexpected key"
error when loading instead of silently disappearing.

Choices (documented because they change what gets loaded):

* The classification final norm (official/ConvNeXt-V2 ``norm.*``, timm ``head.norm``/``norm_pre``)
  acts on globally pooled features; it is dropped, and our per-output ``norm{i}`` start fresh, as in
  the official detection/segmentation fine-tuning.
* mmpretrain's classifier checkpoints keep that same pooled pre-head norm as ``backbone.norm3``
  (their ``gap_before_final_norm``). When a checkpoint has a classifier ``head.*`` and exactly one
  ``norm{i}`` for the last stage, that norm is the pre-head norm and is dropped for the same reason.
  ``norm{i}`` of mmpretrain/mmdet/mmseg *detection/segmentation* checkpoints are real output norms
  and are kept.
* FCMAE (MinkowskiEngine) kernels: a dense kernel (k*k, Cin, Cout) and a depthwise kernel
  (k*k, C) index the kernel offset as ``m = kw * k + kh`` (x-major), the convention of the
  official ConvNeXt-V2 ``remap_checkpoint_keys``; we produce PyTorch (Cout, Cin, kh, kw).
"""
import math
import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

from .errors import UnknownCheckpointFormatError
from .formats import BACKBONE_FORMATS, FORMATS, backbone_format, detect_format

Converted = Tuple[Dict[str, torch.Tensor], List[str]]

_OUTPUT_NORM = re.compile(r'^norm(\d+)\.')
_STAGE = re.compile(r'^stages\.(\d+)\.')
_OURS = re.compile(r'^(downsample_layers|stages)\.\d+\.\d+\.|^norm\d+\.')


class ConvertedStateDict(dict):
    """A state dict in our naming that also records where it came from.

    Attributes: ``format`` (the detected/given format, e.g. ``'detector'``), ``backbone_format``
    (the layout of the backbone weights, e.g. ``'mmpretrain'``) and ``dropped`` (source keys left
    out on purpose: heads, final norm, decoder, non-backbone parts).
    """

    def __init__(self, tensors, fmt: str, backbone_fmt: str, dropped: List[str]):
        super().__init__(tensors)
        self.format = fmt
        self.backbone_format = backbone_fmt
        self.dropped = list(dropped)

    @property
    def source(self) -> str:
        """``'timm'``, or ``'detector/mmpretrain'`` for a backbone taken out of a whole model."""
        if self.format == self.backbone_format:
            return self.format
        return f'{self.format}/{self.backbone_format}'


# ----------------------------------------------------------------------------- shared helpers
def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def _canonical(key: str, value: torch.Tensor) -> torch.Tensor:
    """Bring a tensor to our layout: 1x1-conv MLP weights -> Linear, (1,..,C) vectors -> (C,)."""
    if re.search(r'\.pwconv[12]\.weight$', key) and value.dim() == 4 \
            and value.shape[2:] == (1, 1):
        return value.reshape(value.shape[0], value.shape[1])
    if re.search(r'\.(gamma|beta|bias)$', key) and value.dim() > 1 \
            and value.numel() == max(value.shape):
        return value.reshape(-1)
    return value


def _split(state_dict: Mapping, drop: Callable[[str], bool]) -> Tuple[Dict, List[str]]:
    kept, dropped = {}, []
    for key, value in state_dict.items():
        if drop(key):
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def _finish(state_dict: Mapping, rules) -> Dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        new_key = _rename(key, rules)
        out[new_key] = _canonical(new_key, value)
    return out


# ----------------------------------------------------------------------------- per source
def convert_official(state_dict: Mapping) -> Converted:
    """Official ConvNeXt / ConvNeXt-V2: drop ``head.*`` and the final ``norm.*``; fix shapes."""
    kept, dropped = _split(state_dict, lambda k: k.startswith(('head.', 'norm.')))
    return _finish(kept, ()), dropped


_TIMM_RULES = (
    (r'^stem_(\d+)\.', r'stem.\1.'),                    # features_only wrapper names
    (r'^stages_(\d+)\.', r'stages.\1.'),
    (r'^stem\.(\d+)\.', r'downsample_layers.0.\1.'),
    (r'^stages\.(\d+)\.downsample\.(\d+)\.', r'downsample_layers.\1.\2.'),
    (r'^stages\.(\d+)\.blocks\.(\d+)\.', r'stages.\1.\2.'),
    (r'\.conv_dw\.', '.dwconv.'),
    (r'\.mlp\.fc1\.', '.pwconv1.'),
    (r'\.mlp\.fc2\.', '.pwconv2.'),
    (r'\.mlp\.grn\.weight$', '.grn.gamma'),
    (r'\.mlp\.grn\.bias$', '.grn.beta'),
)


def convert_timm(state_dict: Mapping) -> Converted:
    """timm ``convnext_*`` / ``convnextv2_*``: stem -> downsample_layers.0, stage i's downsample ->
    downsample_layers.i, blocks renamed; ``head.*`` / ``norm_pre.*`` dropped."""
    kept, dropped = _split(state_dict, lambda k: k.startswith(('head.', 'norm_pre.')))
    return _finish(kept, _TIMM_RULES), dropped


_MMPRETRAIN_RULES = (
    (r'^backbone\.', ''),
    (r'\.depthwise_conv\.', '.dwconv.'),
    (r'\.pointwise_conv1\.', '.pwconv1.'),
    (r'\.pointwise_conv2\.', '.pwconv2.'),
)


def _pre_head_norm(keys) -> Optional[str]:
    """The ``norm{i}`` prefix of an mmpretrain classifier's pooled pre-head norm, if any."""
    if not any(k.startswith('head.') for k in keys):
        return None
    inner = [k[len('backbone.'):] if k.startswith('backbone.') else k for k in keys]
    norms = {m.group(1) for k in inner for m in [_OUTPUT_NORM.match(k)] if m}
    stages = {int(m.group(1)) for k in inner for m in [_STAGE.match(k)] if m}
    if len(norms) == 1 and stages and int(next(iter(norms))) == max(stages):
        return f'norm{next(iter(norms))}.'
    return None


def convert_mmpretrain(state_dict: Mapping) -> Converted:
    """mmpretrain ConvNeXt: strip ``backbone.``, rename block parts; drop ``head.*`` (and the
    pooled pre-head ``norm{last}`` of classifier checkpoints, see the module docstring)."""
    pre_head = _pre_head_norm(list(state_dict))

    def drop(key: str) -> bool:
        inner = key[len('backbone.'):] if key.startswith('backbone.') else key
        return key.startswith(('head.', 'neck.', 'data_preprocessor.')) or \
            (pre_head is not None and inner.startswith(pre_head))

    kept, dropped = _split(state_dict, drop)
    return _finish(kept, _MMPRETRAIN_RULES), dropped


def _minkowski_to_torch(kernel: torch.Tensor) -> torch.Tensor:
    """MinkowskiEngine kernel -> PyTorch conv weight (see the module docstring for the order).

    dense (k*k, Cin, Cout) -> (Cout, Cin, k, k); depthwise (k*k, C) -> (C, 1, k, k).
    """
    if kernel.dim() == 2:
        kernel = kernel.unsqueeze(-1)         # depthwise: one input channel per group
        kernel = kernel.permute(0, 2, 1)      # (k*k, 1, C)
    volume, cin, cout = kernel.shape
    k = math.isqrt(volume)
    if k * k != volume:
        raise UnknownCheckpointFormatError(
            f'FCMAE kernel of shape {tuple(kernel.shape)}: {volume} is not a square kernel volume.')
    # kernel[kw * k + kh, ci, co] -> weight[co, ci, kh, kw]
    return kernel.reshape(k, k, cin, cout).permute(3, 2, 1, 0).contiguous()


_FCMAE_RULES = (
    (r'^encoder\.', ''),
    (r'\.ln\.(weight|bias)$', r'.\1'),
    (r'\.linear\.(weight|bias)$', r'.\1'),
)


def convert_fcmae(state_dict: Mapping) -> Converted:
    """ConvNeXt-V2 FCMAE: keep the ``encoder``, MinkowskiEngine kernels -> conv weights,
    (1, C) biases/GRN -> (C,); decoder, ``proj``, ``pred``, ``mask_token`` dropped."""
    has_encoder = any(k.startswith('encoder.') for k in state_dict)
    kept, dropped = _split(state_dict,
                           lambda k: has_encoder and not k.startswith('encoder.'))
    out = {}
    for key, value in kept.items():
        key = _rename(key, _FCMAE_RULES)
        if key.endswith('.kernel'):
            key, value = key[:-len('kernel')] + 'weight', _minkowski_to_torch(value)
        out[key] = _canonical(key, value)
    return out, dropped


_CONVERTERS: Dict[str, Callable[[Mapping], Converted]] = {
    'official': convert_official, 'timm': convert_timm,
    'mmpretrain': convert_mmpretrain, 'fcmae': convert_fcmae,
}


# ----------------------------------------------------------------------------- entry point
def _strip_common_prefix(state_dict: Mapping, prefix: str) -> Mapping:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def _check_format(state_dict: Mapping, fmt: Optional[str]) -> str:
    """The format to use: detected, or the requested one if the keys do not contradict it."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f'Unknown checkpoint format {fmt!r}; choose one of {list(FORMATS)} '
                         'or None to detect it.')
    try:
        detected = detect_format(state_dict)
    except UnknownCheckpointFormatError:
        if fmt is None:
            raise
        return fmt  # nothing recognisable; _result() fails unless the conversion finds weights
    if fmt is None or fmt == detected or (fmt == 'detector' and any(
            k.startswith('backbone.') for k in state_dict)):
        return fmt or detected
    raise UnknownCheckpointFormatError(
        f'Format {fmt!r} was requested, but the key names are those of the {detected!r} '
        f'format (e.g. {list(state_dict)[:3]}). Leave the format to auto-detection or fix it.')


def _result(tensors: Dict[str, torch.Tensor], fmt: str, backbone_fmt: str,
            dropped: List[str]) -> ConvertedStateDict:
    if not any(_OURS.match(k) for k in tensors):
        raise UnknownCheckpointFormatError(
            f'Converting as {fmt!r} gave no ConvNeXt backbone weights (first keys after '
            f'conversion: {list(tensors)[:5]}; dropped {len(dropped)} keys).')
    return ConvertedStateDict(tensors, fmt, backbone_fmt, dropped)


def convert_state_dict(state_dict: Mapping, fmt: Optional[str] = None) -> ConvertedStateDict:
    """Convert a state dict (any of :data:`FORMATS`, auto-detected when ``fmt`` is None) to our
    naming, backbone keys only. The result is a dict that also carries ``.format``,
    ``.backbone_format`` and ``.dropped`` (the source keys left out on purpose).
    """
    state_dict = _strip_common_prefix(state_dict, 'module.')   # DistributedDataParallel
    fmt = _check_format(state_dict, fmt)
    if fmt != 'detector':
        tensors, dropped = _CONVERTERS[fmt](state_dict)
        return _result(tensors, fmt, fmt, dropped)

    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    if not backbone:
        raise UnknownCheckpointFormatError(
            "format 'detector' needs keys starting with 'backbone.', and this state dict has "
            f'none (first keys: {list(state_dict)[:5]}).')
    backbone = _strip_common_prefix(backbone, 'timm_model.')   # mmpretrain's TIMMBackbone
    inner = backbone_format(backbone)
    if inner not in BACKBONE_FORMATS:
        raise UnknownCheckpointFormatError(
            f"The 'backbone.' part of this checkpoint is not a ConvNeXt in a known layout "
            f'(first keys: {list(backbone)[:5]}); supported layouts: {list(BACKBONE_FORMATS)}. '
            'It is probably a detector/segmentor with another backbone (e.g. ResNet): give a '
            'ConvNeXt checkpoint (official, timm, mmpretrain or one trained with this package), '
            'or init_cfg=None to start from scratch.')
    tensors, dropped = _CONVERTERS[inner](backbone)
    dropped = ['backbone.' + k for k in dropped] + \
        [k for k in state_dict if not k.startswith('backbone.')]
    return _result(tensors, 'detector', inner, dropped)
