"""The config values ``ConvNeXt`` reads, declared for the startup check (``config_schema``).

The ranges are the backbone's own: ``out_indices``, ``frozen_stages`` and ``output_stride``
depend on the arch's number of stages, read from the sibling ``arch`` value with the backbone's
own resolver; where the arch itself is wrong, that is the problem named.
"""
import re
from typing import Mapping, Optional

from ..config_schema import Schema, Value, boolean, is_int, number
from .archs import resolve_arch
from .convnext import _normalize_out_indices, native_output_strides


def _stages(siblings: Mapping) -> Optional[int]:
    try:
        return len(resolve_arch(siblings.get('arch', 'v1-tiny')).depths)
    except (TypeError, ValueError):  # the arch's own entry says what is wrong with it
        return None


def _arch_problem(value, siblings) -> Optional[str]:
    try:
        resolve_arch(value)
    except (TypeError, ValueError) as error:
        return str(error).rstrip('.')
    return None


def _out_indices_problem(value, siblings) -> Optional[str]:
    stages = _stages(siblings)
    if stages is None:
        return None
    try:
        _normalize_out_indices(value, stages)
    except ValueError as error:
        return re.sub(r'^ConvNeXt out_indices (\[[^\]]*\] )?', '', str(error)).rstrip('.')
    return None


def _frozen_problem(value, siblings) -> Optional[str]:
    stages = _stages(siblings)
    if stages is None or -1 <= value <= stages:
        return None
    return (f'must be an int in [-1, {stages}] for this {stages}-stage arch (-1: nothing '
            f'frozen, 0: the stem, {stages}: every stage)')


def _stride_problem(value, siblings) -> Optional[str]:
    stages = _stages(siblings)
    if stages is None or value is None or value in native_output_strides(stages):
        return None
    return (f'must be one of {list(native_output_strides(stages))} for this {stages}-stage '
            'arch (the last: as published; smaller: the last stages dilated)')


def _last_stage(siblings: Mapping):
    stages = _stages(siblings) or 4
    return tuple(range(stages))


def _is_indices(value) -> bool:
    return is_int(value) or (isinstance(value, (list, tuple)) and bool(value)
                             and all(is_int(v) for v in value))


SCHEMA: Schema = {
    'arch': Value("an arch name ('v1-tiny' ... 'v1-xlarge', 'v2-atto' ... 'v2-huge') or "
                  'dict(depths=[...], channels=[...])',
                  lambda value: isinstance(value, (str, Mapping)) or hasattr(value, 'depths'),
                  'v1-tiny', depends=_arch_problem),
    'in_channels': number(0, low_open=True, integer=True, example=3,
                          about='channels of the input image'),
    'out_indices': Value('an int or a non-empty list of ints (stage indices)', _is_indices,
                         (0, 1, 2, 3), 'the stages whose features the neck/heads take',
                         depends=_out_indices_problem, fix=_last_stage),
    'drop_path_rate': number(0, 1, high_open=True, example=0.4,
                             about='stochastic depth; the detection recipes use 0.4-0.8'),
    'layer_scale_init_value': number(0, none=True, example=1.0,
                                     about='None: the arch default, 0: layer scale off; '
                                     'detection uses 1.0'),
    'frozen_stages': Value('an int', is_int, -1, depends=_frozen_problem),
    'output_stride': Value('an int or None', lambda value: value is None or is_int(value), 32,
                           depends=_stride_problem),
    'with_cp': boolean(example=False, about='gradient checkpointing per block'),
    'fast_path': boolean(about="the blocks' fused computations"),
}
