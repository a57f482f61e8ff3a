"""Mistakes that pass mmengine's startup and fail at the first validation or the first
checkpoint, hours into a run (or make it silently wrong), checked before anything is built.

Each was seen with the toy configs through tools/train.py (docs/reliability.md lists what was
tried and what happened):

* an evaluator's ``ann_file`` that does not exist (mmengine's Errno line without the key), or
  that does not hold the images of the dataset it scores under their ids (another split of
  COCO: pycocotools' "Results do not correspond to current coco set" at the first validation;
  ids that happen to overlap with other file names: a metric of the wrong images, silently).
  Other annotations of the same images are a valid run (other ground truth on purpose);
* ``save_best`` naming a metric the evaluators do not produce (``KeyError`` after the first
  validation; or mmengine's "Cannot infer the rule" for an unknown name);
* ``IoUMetric.iou_metrics`` naming an unknown metric (``KeyError`` at the first validation);
* COCO's ``segm`` metric for a model that predicts no masks (``KeyError: segm is not in
  results`` at the first validation);
* ``format_only`` without ``outfile_prefix`` (an assertion cut mid-sentence);
* a checkpoint ``out_dir`` that cannot be written (an Errno line at the first checkpoint);
* a checkpoint hook counting epochs in an iteration-based loop (no checkpoint until the last
  iteration), or saving neither every ``interval`` nor the last (no checkpoint at all).

Each is one :class:`LateFailureError` line naming the setting and the fix. Nothing is refused
that the host would run; what cannot be known here (a metric class we do not know the names
of, a remote path) is not checked.
"""
import json
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..config_schema import cfg_option
from .checks import why_unwritable

_PAIRS = (('val_dataloader', 'val_evaluator'), ('test_dataloader', 'test_evaluator'))
_COCO_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
_PROPOSAL_ITEMS = ('AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000')
_IOU_METRICS = {'mIoU': ('mIoU', 'mAcc'), 'mDice': ('mDice', 'mAcc'),
                'mFscore': ('mFscore', 'mPrecision', 'mRecall')}
_PANOPTIC = ('PQ', 'SQ', 'RQ', 'PQ_th', 'SQ_th', 'RQ_th', 'PQ_st', 'SQ_st', 'RQ_st')


class LateFailureError(ValueError):
    """A setting that would fail (or go silently wrong) at the first validation or checkpoint;
    the message names it and the fix."""


def _plain(node):
    return node.to_dict() if hasattr(node, 'to_dict') else node


def _section(cfg, key: str) -> dict:
    """A config section as a dict ({} when absent or of another shape: the host's to report)."""
    node = _plain(cfg.get(key))
    return node if isinstance(node, dict) else {}


def _metrics(cfg, key: str) -> List[Tuple[str, dict]]:
    """``(config path, metric dict)`` of an evaluator (a dict or a list of them)."""
    evaluator = _plain(cfg.get(key))
    if isinstance(evaluator, dict) and isinstance(evaluator.get('metrics'), list):
        return [(f'{key}.metrics.{i}', m) for i, m in enumerate(evaluator['metrics'])
                if isinstance(m, dict)]  # Evaluator(metrics=[...])
    if isinstance(evaluator, dict):
        return [(key, evaluator)]
    if isinstance(evaluator, (list, tuple)):
        return [(f'{key}.{i}', m) for i, m in enumerate(evaluator) if isinstance(m, dict)]
    return []


def _strings(value, default) -> List[str]:
    """A metric's list-or-string setting as a list of strings (others: the host's to report)."""
    value = default if value is None else value
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, (list, tuple)) else []


def _kind(metric: dict) -> str:
    return str(metric.get('type', '')).split('.')[-1]


def _dataset(cfg, loader: str) -> Optional[dict]:
    dataset = _section(cfg, loader).get('dataset')
    while isinstance(dataset, dict) and isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']  # RepeatDataset & co.: the images are the inner set's
    return dataset if isinstance(dataset, dict) else None


def _local(path) -> bool:
    return isinstance(path, str) and '://' not in path


# Evaluators against their datasets --------------------------------------------------------------

def _read(path: str) -> Optional[dict]:
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get('images'), list) else None


def _images(data: dict) -> Dict[object, str]:
    """``{image id: file name}`` of a COCO-style file."""
    return {image.get('id'): image.get('file_name') for image in data['images']
            if isinstance(image, dict)}


def _differ(theirs: dict, ours: dict) -> Optional[str]:
    """How the evaluator's file differs from the dataset's on the dataset's images."""
    their_images, our_images = _images(theirs), _images(ours)
    other = [i for i, name in our_images.items() if their_images.get(i) != name]
    if other:
        return (f'{len(other)} of its {len(our_images)} images are not there under their ids, '
                f'e.g. id {other[0]!r} ({our_images[other[0]]})')
    # The same images with other objects is a run the host does on purpose (other ground truth
    # for the same images, e.g. a model's detections): not refused.
    return None


def _ann_file_problems(cfg, loader: str, key: str) -> Iterator[str]:
    dataset = _dataset(cfg, loader)
    own = None
    root = dataset.get('data_root') if dataset else None
    if dataset and _local(dataset.get('ann_file')) and dataset.get('ann_file') and \
            isinstance(root or '', str):
        own = osp.join(root or '', dataset['ann_file'])
    for where, metric in _metrics(cfg, key):
        ann_file = metric.get('ann_file')
        if not _local(ann_file) or metric.get('backend_args'):
            continue
        known = own if own and osp.isfile(own) and own != ann_file else 'PATH'
        fix = (f' Fix: --cfg-options {where}.ann_file={known}' +
               ('' if known != 'PATH' else f" (the {loader} dataset's annotation file)"))
        if not osp.isfile(ann_file):
            yield (f'{where}.ann_file = {ann_file}: no such file; the {_kind(metric)} of the '
                   f'{loader} reads it at the first validation.{fix}')
            continue
        if own is None or not osp.isfile(own) or osp.samefile(ann_file, own):
            continue
        theirs, ours = _read(ann_file), _read(own)
        how = _differ(theirs, ours) if theirs is not None and ours is not None else None
        if how:
            yield (f'{where}.ann_file = {ann_file} is not the annotation file of the {loader} '
                   f'dataset ({own}): {how}; the metric would fail, or score against the wrong '
                   f'annotations, at the first validation.{fix}')


def _masks_predicted(model) -> bool:
    """Whether an mmdet model config predicts instance masks: a mask head (two-stage, YOLACT,
    CondInst...), a MaskFormer-style head, or a SOLO / *Ins* head (mmdet's instance heads)."""
    model = _plain(model)
    found = False

    def walk(node):
        nonlocal found
        if isinstance(node, dict):
            kind = str(node.get('type', ''))
            if 'mask_head' in node or 'panoptic_head' in node or 'SOLO' in kind or \
                    'Ins' in kind:
                found = True
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)
    walk(model)
    return found


def _metric_problems(cfg, key: str) -> Iterator[str]:
    for where, metric in _metrics(cfg, key):
        kind = _kind(metric)
        if kind == 'CocoMetric':
            wanted = _strings(metric.get('metric'), 'bbox')
            if 'segm' in wanted and cfg.get('default_scope') == 'mmdet' and \
                    not _masks_predicted(cfg.get('model')):
                keep = [m for m in wanted if m != 'segm'] or ['bbox']
                yield (f"{where}.metric = {wanted}: 'segm' needs masks, which this model does "
                       'not predict (no mask head): the first validation would end with '
                       f"KeyError: segm is not in results. Fix: --cfg-options "
                       f'{where}.metric={cfg_option(keep)}')
            if metric.get('format_only') and not metric.get('outfile_prefix'):
                yield (f'{where}.format_only = True needs outfile_prefix (where the result '
                       f'files go). Fix: --cfg-options {where}.outfile_prefix=work_dirs/results')
        elif kind == 'IoUMetric':
            wanted = _strings(metric.get('iou_metrics'), ['mIoU'])
            unknown = [m for m in wanted if m not in _IOU_METRICS]
            if unknown:
                known = [m for m in wanted if m in _IOU_METRICS] or ['mIoU']
                yield (f'{where}.iou_metrics = {wanted}: {unknown} unknown to mmseg (it knows '
                       f'{list(_IOU_METRICS)}; the first validation would fail). Fix: '
                       f'--cfg-options {where}.iou_metrics={cfg_option(known)}')
            if metric.get('format_only') and not metric.get('output_dir'):
                yield (f'{where}.format_only = True needs output_dir (where the label maps '
                       f'go). Fix: --cfg-options {where}.output_dir=work_dirs/label_maps')


def metric_names(metric: dict) -> Optional[List[str]]:
    """The names an evaluator's metric reports (as mmdet's/mmseg's code builds them, prefix
    included); None for a metric type not known here."""
    kind = _kind(metric)
    if kind == 'CocoMetric':
        names = []
        for each in _strings(metric.get('metric'), 'bbox'):
            if each in ('proposal', 'proposal_fast'):
                nums = metric.get('proposal_nums', (100, 300, 1000))
                names += (_strings(metric.get('metric_items'), _PROPOSAL_ITEMS)
                          if each == 'proposal' else [f'AR@{n}' for n in nums])
            else:
                names += [f'{each}_{item}'
                          for item in _strings(metric.get('metric_items'), _COCO_ITEMS)]
        prefix = metric.get('prefix') or 'coco'
    elif kind == 'IoUMetric':
        names = list(dict.fromkeys(['aAcc'] + [
            n for m in _strings(metric.get('iou_metrics'), ['mIoU'])
            for n in _IOU_METRICS.get(m, ())]))
        prefix = metric.get('prefix')
    elif kind == 'CocoPanopticMetric':
        names, prefix = list(_PANOPTIC), metric.get('prefix') or 'coco_panoptic'
    else:
        return None
    return [f'{prefix}/{n}' if prefix else n for n in names]


def _save_best_problems(cfg) -> Iterator[str]:
    hook = _section(cfg, 'default_hooks').get('checkpoint')
    best = hook.get('save_best') if isinstance(hook, dict) else None
    if not best or best == 'auto' or not cfg.get('val_evaluator'):
        return
    produced = [metric_names(m) for _, m in _metrics(cfg, 'val_evaluator')]
    if any(names is None for names in produced):
        return  # a metric whose names we do not know: the host decides
    names = [n for each in produced for n in each]
    classwise = any(m.get('classwise') for _, m in _metrics(cfg, 'val_evaluator'))
    for key in _strings(best, []):
        if key not in names and not (classwise and key.endswith('_precision')):
            yield (f'default_hooks.checkpoint.save_best = {key!r}: the val_evaluator reports '
                   f'no such metric ({", ".join(names[:8])}{", ..." if len(names) > 8 else ""}); '
                   'the hook would fail after the first validation. Fix: --cfg-options '
                   f'default_hooks.checkpoint.save_best={names[0]}')


# Checkpoints ------------------------------------------------------------------------------------

def _loop_length(cfg) -> Tuple[Optional[str], Optional[int]]:
    """``('iter'|'epoch', length)`` of the training loop (None where unknown)."""
    train = _section(cfg, 'train_cfg')
    kind = str(train.get('type', ''))
    if 'max_iters' in train or kind.endswith('IterBasedTrainLoop'):
        return 'iter', train.get('max_iters')
    if 'max_epochs' in train or kind.endswith('EpochBasedTrainLoop'):
        return 'epoch', train.get('max_epochs')
    return None, None


def _checkpoint_problems(cfg) -> Iterator[str]:
    hook = _section(cfg, 'default_hooks').get('checkpoint')
    if not isinstance(hook, dict):
        return
    where = 'default_hooks.checkpoint'
    unit, length = _loop_length(cfg)
    by_epoch = hook.get('by_epoch', True)
    interval = hook.get('interval', -1)
    if unit == 'iter' and by_epoch is True:
        yield (f'{where}.by_epoch = True counts epochs, which this iteration-based training '
               '(train_cfg.max_iters) never completes: no checkpoint before the last '
               f'iteration. Fix: --cfg-options {where}.by_epoch=False')
    elif isinstance(length, int) and isinstance(interval, int) and \
            not hook.get('save_last', True) and (interval <= 0 or interval > length) and \
            (unit == 'epoch') == bool(by_epoch):
        yield (f'{where}.interval = {interval} with save_last=False: this training of {length} '
               f'{unit}s would save no checkpoint at all. Fix: --cfg-options '
               f'{where}.save_last=True (or {where}.interval={max(1, length)})')
    out_dir = hook.get('out_dir')
    if _local(out_dir) and out_dir and not hook.get('backend_args'):
        why = why_unwritable(out_dir, leave_no_trace=True)
        if why:
            yield (f'{where}.out_dir = {out_dir}: checkpoints cannot be written there ({why}); '
                   'the first checkpoint would fail, after its interval of training. Fix: '
                   f'--cfg-options {where}.out_dir=None (checkpoints in the work dir), or a '
                   'writable folder')


TRAINING = ('train_dataloader', 'val_dataloader')


def late_failure_problems(cfg: Config, loaders: Sequence[str] = TRAINING) -> Iterator[str]:
    """One message per setting that would fail (or go silently wrong) at the first validation
    or checkpoint of a run that reads ``loaders``: each loader's evaluator (val, test) and, for
    a training run (``train_dataloader`` among them), ``save_best`` and the checkpoints."""
    for loader, key in _PAIRS:
        if loader in loaders and cfg.get(loader) and cfg.get(key):
            yield from _ann_file_problems(cfg, loader, key)
            yield from _metric_problems(cfg, key)
    if 'train_dataloader' in loaders:
        yield from _save_best_problems(cfg)
        yield from _checkpoint_problems(cfg)


def check_late_failures(cfg: Config, loaders: Sequence[str] = TRAINING) -> None:
    """Raise :class:`LateFailureError` for the first such setting (see the module docstring)."""
    for message in late_failure_problems(cfg, loaders):
        raise LateFailureError(message)
