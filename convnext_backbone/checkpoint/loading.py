"""Loading converted weights into a ConvNeXt backbone: strict, explained, never a silent init.

The rule: every backbone tensor must come from the checkpoint with the right shape, except the
output norms ``norm{i}`` that classification/pre-training checkpoints do not have (they start
fresh, as in the official detection/segmentation recipes, and the report says so). Anything else
- keys of another depth, tensors of another width, keys matching nothing - raises
:class:`CheckpointMismatchError` naming the backbone's arch, the offending keys, and the arch the
checkpoint looks like. Output norms that the checkpoint has but the backbone does not (it was
built with fewer ``out_indices``) are dropped and reported.
"""
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from .convert import ConvertedStateDict, convert_state_dict
from .errors import CheckpointMismatchError
from .io import read_state_dict

_OUTPUT_NORM = re.compile(r'^norm\d+\.')
_BLOCK = re.compile(r'^stages\.(\d+)\.(\d+)\.dwconv\.weight$')


def summarize_keys(keys, limit: int = 4) -> str:
    """``'a, b, c, d, ... (12 keys)'``: the first few keys and the count, for one-line messages."""
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys)} keys)' if len(keys) > limit else '')


def _group(keys) -> str:
    """``'head.* (2), norm.* (2)'``: keys grouped by their first name, for the summary."""
    counts: Dict[str, int] = {}
    for key in keys:
        top = key.split('.', 1)[0]
        counts[top] = counts.get(top, 0) + 1
    return ', '.join(f'{top}.* ({n})' for top, n in counts.items())


@dataclass
class LoadReport:
    """What ``load_pretrained`` did: ``loaded`` backbone keys, ``fresh`` keys left at their
    initialisation (output norms only), ``dropped`` checkpoint keys not used (heads, final norm,
    decoder, detector necks/heads, unused output norms)."""
    source: str
    format: str
    arch: str
    loaded: List[str] = field(default_factory=list)
    fresh: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)

    @property
    def num_loaded(self) -> int:
        return len(self.loaded)

    def summary(self) -> str:
        total = len(self.loaded) + len(self.fresh)
        text = (f'ConvNeXt {self.arch}: loaded {len(self.loaded)}/{total} tensors from '
                f'{self.source} ({self.format} format)')
        if self.fresh:
            norms = sorted({k.split('.', 1)[0] for k in self.fresh})
            text += (f'; freshly initialised: {", ".join(norms)} (output norms, not in this '
                     'checkpoint)')
        if self.dropped:
            text += f'; dropped from the checkpoint: {_group(self.dropped)}'
        return text + '.'

    __str__ = summary


def _arch_name(backbone) -> str:
    spec = getattr(backbone, 'arch_spec', None)
    return getattr(spec, 'name', None) or type(backbone).__name__


def describe_arch(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Guess the arch of converted weights (depths, channels, GRN) and name it when in the table."""
    depths: Dict[int, int] = {}
    channels: Dict[int, int] = {}
    for key, value in state_dict.items():
        match = _BLOCK.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
            channels[stage] = int(value.shape[0])
    if not depths:
        return 'an unknown arch'
    stages = range(max(depths) + 1)
    dep = tuple(depths.get(i, 0) for i in stages)
    ch = tuple(channels.get(i, 0) for i in stages)
    grn = any('.grn.' in k for k in state_dict)
    try:
        from ..models.archs import ARCH_SETTINGS
        names = [n for n, s in ARCH_SETTINGS.items()
                 if s.depths == dep and s.channels == ch and s.grn == grn]
    except ImportError:  # the arch table is optional for this guess
        names = []
    desc = f'depths {list(dep)}, channels {list(ch)}, {"with" if grn else "without"} GRN'
    return f'{names[0]} ({desc})' if names else f'a custom arch ({desc})'


def _fit_shape(value: torch.Tensor, shape: torch.Size) -> Optional[torch.Tensor]:
    """The tensor in the model's shape when they differ only by singleton dims, else None."""
    if value.shape == shape:
        return value
    if value.numel() == shape.numel() and \
            [s for s in value.shape if s != 1] == [s for s in shape if s != 1]:
        return value.reshape(shape)
    return None


def _compare(converted: Mapping, target: Mapping) -> Tuple[dict, list, list, list, list, list]:
    """Split converted keys against the model's: fitted tensors, unused output norms,
    unexpected keys, shape mismatches, missing output norms (fresh), other missing keys."""
    fitted, unused_norms, unexpected, mismatched = {}, [], [], []
    for key, value in converted.items():
        if key not in target:
            (unused_norms if _OUTPUT_NORM.match(key) else unexpected).append(key)
            continue
        value2 = _fit_shape(value, target[key].shape)
        if value2 is None:
            mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
        else:
            fitted[key] = value2
    absent = [k for k in target if k not in converted]
    fresh = [k for k in absent if _OUTPUT_NORM.match(k)]
    missing = [k for k in absent if not _OUTPUT_NORM.match(k)]
    return fitted, unused_norms, unexpected, mismatched, fresh, missing


def _mismatch_message(arch: str, source: str, converted: ConvertedStateDict, fitted,
                      unexpected, mismatched, missing) -> str:
    lines = [f'Checkpoint {source} ({converted.source} format) does not fit the ConvNeXt '
             f'backbone with arch {arch!r}:']
    if not fitted and not mismatched:
        lines.append(f'  none of its {len(converted)} converted keys matches a backbone key '
                     f'(e.g. {summarize_keys(converted, 3)}).')
    if unexpected:
        lines.append(f'  {len(unexpected)} unexpected keys: {summarize_keys(unexpected)}')
    if mismatched:
        shown = ', '.join(f'{k} {c} vs model {m}' for k, c, m in mismatched[:3])
        lines.append(f'  {len(mismatched)} shape mismatches (checkpoint vs model): {shown}'
                     + (', ...' if len(mismatched) > 3 else ''))
    if missing:
        lines.append(f'  {len(missing)} backbone keys missing from the checkpoint: '
                     f'{summarize_keys(missing)}')
    lines.append(f'The checkpoint looks like {describe_arch(converted)}; choose the arch '
                 'that matches it (or the checkpoint that matches the arch).')
    return '\n'.join(lines)


def load_pretrained(backbone: torch.nn.Module, src, prefix: Optional[str] = None,
                    logger=None, fmt: Optional[str] = None,
                    name: Optional[str] = None) -> LoadReport:
    """Load a checkpoint (path, or a state dict) into ``backbone``; return a :class:`LoadReport`.

    ``prefix`` keeps only keys under it (e.g. ``'backbone.'``) and strips it before the format is
    detected; ``fmt`` forces a format (see ``convert_state_dict``). A ``ConvertedStateDict`` is
    used as it is (no second conversion). ``name`` labels ``src`` in messages (default: the path,
    or ``'<state dict>'``). One summary line is logged via mmengine's ``print_log`` to ``logger``
    (default: the current MMLogger; ``'silent'`` for none).
    Raises :class:`CheckpointMismatchError` when the weights do not fit (see the module docstring).
    """
    if isinstance(src, Mapping):
        source, state_dict = name or '<state dict>', src
    else:
        source, state_dict = name or os.fspath(src), read_state_dict(src)
    arch = _arch_name(backbone)
    if prefix:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise CheckpointMismatchError(
                f'Checkpoint {source} has no key starting with prefix {prefix!r}; nothing to '
                f'load into the ConvNeXt backbone with arch {arch!r}.', arch=arch)
    if isinstance(state_dict, ConvertedStateDict) and fmt is None:
        converted = state_dict
    else:
        converted = convert_state_dict(state_dict, fmt)
    fitted, unused_norms, unexpected, mismatched, fresh, missing = \
        _compare(converted, backbone.state_dict())
    if unexpected or mismatched or missing or not fitted:
        raise CheckpointMismatchError(
            _mismatch_message(arch, source, converted, fitted, unexpected, mismatched, missing),
            arch=arch, unexpected=unexpected, missing=missing, mismatched=mismatched)

    result = backbone.load_state_dict(fitted, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) == set(fresh), result
    report = LoadReport(source=source, format=converted.source, arch=arch,
                        loaded=list(fitted), fresh=fresh,
                        dropped=list(converted.dropped) + unused_norms)
    from mmengine.logging import print_log
    print_log(report.summary(), logger=logger if logger is not None else 'current')
    return report
