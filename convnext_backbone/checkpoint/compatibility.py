"""Does a whole-model checkpoint (``load_from``, ``tools/test.py CHECKPOINT``) fit the model?

mmengine loads ``load_from`` non-strictly: a detector checkpoint of another arch gives a hundred
"size mismatch" log lines, then training starts from random weights (exit 0), and testing with it
reports AP 0.000 (exit 0). This module compares the checkpoint's tensors with the model's before
anything is copied, by key, shape and dtype, and answers in one line:

* keys of the model missing from the checkpoint, or of another shape: a
  :class:`~.errors.CheckpointMismatchError` naming what the checkpoint looks like (its backbone's
  arch via :func:`~.loading.describe_arch`, its heads' class counts) against the model, and what to
  do; with ``partial=True`` (fine-tuning on another dataset) only what fits is kept and the report
  names what stays freshly initialised;
* a non-floating tensor (int, bool) where the model has a floating one: always refused
  (:class:`~.errors.CheckpointMismatchError`): copying it would silently turn weights into
  0/1 values;
* a floating dtype change (e.g. an fp16 checkpoint into an fp32 model): allowed, reported;
* checkpoint keys the model does not have (e.g. an auxiliary head the model lacks): allowed,
  reported (nothing in the model stays fresh because of them).

The file itself is read by mmengine's loader, which ``convnext_backbone.compat`` routes through
the package's safe-loading policy (``checkpoint.safety``); this module only sees tensors.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, MutableMapping, Tuple

import torch

from .errors import CheckpointMismatchError
from .loading import describe_arch, summarize_keys

#: Head weights whose first dimension says how many classes a model predicts:
#: (key suffix, classes = rows - offset). mmdet's softmax bbox heads add a background row.
_CLASS_ROWS = (('fc_cls.weight', 1), ('conv_logits.weight', 0), ('conv_seg.weight', 0),
               ('retina_cls.weight', 0))
_MODULE_PREFIX = re.compile(r'^module\.')


def _head_classes(state: Mapping[str, torch.Tensor]) -> Dict[str, int]:
    """``{'roi_head.bbox_head': 80, 'decode_head': 150, ...}`` read off head weight shapes."""
    heads = {}
    for key, value in state.items():
        for suffix, offset in _CLASS_ROWS:
            if key.endswith(suffix) and getattr(value, 'dim', lambda: 0)() >= 1:
                heads[key[:-len(suffix)].rstrip('.')] = int(value.shape[0]) - offset
    return heads


def describe_model_state(state: Mapping[str, torch.Tensor]) -> str:
    """What a detector/segmentor state dict looks like: backbone arch and heads' class counts."""
    backbone = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    parts = []
    if backbone:
        arch = describe_arch(backbone)
        parts.append('backbone ' + ('not a ConvNeXt (e.g. ' + summarize_keys(backbone, 2) + ')'
                                    if arch == 'an unknown arch' else arch))
    heads = _head_classes(state)
    if heads:
        counts = sorted(set(heads.values()))
        where = ', '.join(sorted(heads))
        parts.append(f'num_classes {counts[0] if len(counts) == 1 else counts} ({where})')
    return '; '.join(parts) or f'{len(state)} tensors, e.g. {summarize_keys(state, 3)}'


#: ``meta`` keys naming the library that wrote a checkpoint, the most specific first.
_WRITERS = ('mmdet_version', 'mmseg_version', 'mmpretrain_version', 'mmcls_version',
            'mmengine_version', 'mmcv_version')


def describe_checkpoint(checkpoint) -> str:
    """Who wrote a checkpoint and for which classes, from its ``meta`` (the old OpenMMLab
    ``CLASSES`` or mmengine's ``dataset_meta``): ``'an mmdet 2.11 checkpoint; 80 classes:
    person, bicycle, car, ...'``; ``''`` when it says neither."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    parts = []
    for key in _WRITERS:
        version = meta.get(key)
        if isinstance(version, str):  # mmdet 2.x wrote e.g. '2.11.0' + a git hash
            number = re.match(r'\d+\.\d+', version)
            parts.append(f'an {key[:-len("_version")]} '
                         f'{number.group(0) if number else version} checkpoint')
            break
    dataset_meta = meta.get('dataset_meta')
    classes = meta.get('CLASSES') or (dataset_meta.get('classes') if isinstance(
        dataset_meta, Mapping) else None)
    if isinstance(classes, (list, tuple)) and classes:
        shown = ', '.join(map(str, classes[:3])) + (', ...' if len(classes) > 3 else '')
        parts.append(f'{len(classes)} classes: {shown}')
    return '; '.join(parts)


def loaded_summary(source: str, report: 'CompatibilityReport', checkpoint) -> str:
    """The one line for a checkpoint that fits the model exactly."""
    origin = describe_checkpoint(checkpoint)
    return (f'{source}: all {len(report.fits)} tensors of the model matched by name and shape'
            + (f'; {origin}' if origin else ''))


@dataclass
class CompatibilityReport:
    """How a checkpoint's tensors compare with a model's (keys relative to the model)."""
    fits: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    not_floating: List[Tuple[str, torch.dtype, torch.dtype]] = field(default_factory=list)
    dtype_changes: Dict[Tuple[torch.dtype, torch.dtype], int] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.mismatched or self.not_floating)

    @property
    def fresh(self) -> List[str]:
        """Model keys that keep their initialisation when only what fits is loaded."""
        return self.missing + [k for k, _, _ in self.mismatched]

    def notes(self) -> List[str]:
        """Allowed differences worth a log line: dtype changes, checkpoint keys not used."""
        notes = [f'{n} tensors are {a} in the checkpoint and {b} in the model (converted on '
                 'load)' for (a, b), n in self.dtype_changes.items()]
        if self.unexpected:
            notes.append(f'{len(self.unexpected)} checkpoint tensors the model does not have '
                         f'are not used: {summarize_keys(self.unexpected)}')
        return notes


def compare_state_dicts(state: Mapping[str, torch.Tensor],
                        model_state: Mapping[str, torch.Tensor]) -> CompatibilityReport:
    """Compare a checkpoint's state dict with the model's ``state_dict()`` (tensors only)."""
    report = CompatibilityReport()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        target = model_state.get(key)
        if target is None:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(target.shape):
            report.mismatched.append((key, tuple(value.shape), tuple(target.shape)))
        elif target.is_floating_point() and not value.is_floating_point():
            report.not_floating.append((key, value.dtype, target.dtype))
        else:
            if value.dtype != target.dtype:
                pair = (value.dtype, target.dtype)
                report.dtype_changes[pair] = report.dtype_changes.get(pair, 0) + 1
            report.fits.append(key)
    report.missing = [k for k in model_state if k not in state]
    return report


def _mismatch_line(source: str, report: CompatibilityReport, state, model_state) -> str:
    total = len(model_state)
    problems = []
    if report.mismatched:
        key, have, want = report.mismatched[0]
        problems.append(f'{len(report.mismatched)} of the model\'s {total} tensors have another '
                        f'shape (e.g. {key} {list(have)} vs model {list(want)})')
    if report.missing:
        problems.append(f'{len(report.missing)} are missing (e.g. '
                        f'{summarize_keys(report.missing, 2)})')
    return (f'{source} does not fit the model: {"; ".join(problems)}. The checkpoint has '
            f'{describe_model_state(state)}; the model has {describe_model_state(model_state)}. '
            'Use the checkpoint that matches the config (arch, num_classes), or change the config '
            'to match the checkpoint; to fine-tune from it on another dataset, load only what '
            'fits with tools/train.py --partial-load (config: default_hooks.checkpoint.'
            'partial_load=True).')


def check_model_checkpoint(state: MutableMapping[str, torch.Tensor],
                           model_state: Mapping[str, torch.Tensor], source: str,
                           partial: bool = False) -> CompatibilityReport:
    """Check a whole-model state dict against the model's; raise or trim it.

    ``state`` is the checkpoint's state dict (a leading ``module.`` is ignored, as mmengine does);
    ``source`` names it in messages. Non-floating tensors for floating model tensors always raise
    :class:`CheckpointMismatchError`; so do missing or other-shape tensors unless ``partial``,
    in which case the tensors that do not fit are deleted from ``state`` (so the loader copies
    only what fits, without a log line per tensor) and the report's ``fresh`` lists the model
    keys that stay initialised. Returns the :class:`CompatibilityReport`.
    """
    renamed = {_MODULE_PREFIX.sub('', k): k for k in state}
    view = {new: state[old] for new, old in renamed.items()}
    report = compare_state_dicts(view, model_state)
    if report.not_floating:
        key, have, want = report.not_floating[0]
        raise CheckpointMismatchError(
            f'{source}: {len(report.not_floating)} tensors hold {have} values where the model has '
            f'{want} weights (e.g. {key}); loading them would silently turn weights into whole '
            'numbers (zeros and ones for bool). The file is not a weights checkpoint for this '
            'model (or it was saved after a wrong cast): re-save it with floating-point '
            'tensors, or use the original checkpoint.',
            mismatched=[(k, have, want) for k, have, want in report.not_floating])
    if report.exact:
        return report
    if not partial:
        raise CheckpointMismatchError(
            _mismatch_line(source, report, view, model_state),
            missing=report.missing, unexpected=report.unexpected, mismatched=report.mismatched)
    for key, _, _ in report.mismatched:
        del state[renamed[key]]
    return report


def partial_load_summary(source: str, report: CompatibilityReport) -> str:
    """One line for a partial load: what was loaded, and what stays freshly initialised."""
    fresh = report.fresh
    groups: Dict[str, int] = {}
    for key in fresh:
        top = '.'.join(key.split('.')[:-1][:2]) or key
        groups[top] = groups.get(top, 0) + 1
    shown = ', '.join(f'{g}.* ({n})' for g, n in groups.items())
    return (f'Partial load of {source}: {len(report.fits)} tensors loaded; {len(fresh)} keep their '
            f'fresh initialisation (they do not fit: {shown or "none"}).')
