"""Every head of the model predicts exactly the dataset's classes, checked before anything is
built.

What a mismatch does in the hosts (seen with the toy configs through tools/train.py):

* a detector head with MORE classes than the dataset (Mask R-CNN's and Cascade's bbox and mask
  heads, DINO's head, Mask2Former's things) predicts labels the dataset has no class for: mmdet's
  COCO metric fails on the first such label (``IndexError`` in ``coco_metric.py``) at the first
  validation, after a whole epoch of training (an untrained DINO or Mask2Former predicts them
  at once; a trained one less often, so the failure can come at any later validation);
* a segmentation head with more classes trains outputs no pixel teaches (every pixel predicted
  as one of them is an error) without a word;
* a head with FEWER classes cannot learn the last ones: mmdet's bbox heads take the label equal
  to ``num_classes`` as background, larger labels and mmseg's losses fail on the first batch;
* Mask2Former's ``loss_cls.class_weight`` (one weight per class and one for "no object") of
  another length fails in the loss of the first iteration;
* Mask2Former's panoptic fusion head splits the labels into things and stuff by its own
  ``num_things_classes``: another split than the dataset's mislabels segments silently.

What each head counts is read from the host's own classes (mmdet/mmseg registry of the config's
scope), by their constructors' arguments, through ``**kwargs`` to the base classes:
``num_classes`` (mmdet's bbox, mask, dense and DETR heads; mmseg's decode heads, including its
Mask2Former head) or ``num_things_classes + num_stuff_classes`` (mmdet's MaskFormer/Mask2Former
heads and their panoptic fusion heads; against the dataset's ``thing_classes`` /
``stuff_classes``, or its classes and no stuff for an instance dataset). A value the config does
not give is the constructor's default (mmdet's bbox heads: 80). Left out: ``rpn_head`` (a
two-stage detector sets its ``num_classes`` to 1 itself: foreground) and heads that count a
label set of their own (:data:`OWN_LABEL_SETS`: HTC's semantic head). A list
``class_weight`` of a head's losses counts the classes too, plus one for the background /
no-object class of a softmax ``loss_cls`` (mmdet's heads; mmseg's ``loss_decode`` has none).

A mismatch is one :class:`~convnext_backbone.data.errors.DataError` line naming every setting
that disagrees and the ``--cfg-options`` that sets them all.
"""
import importlib
import inspect
from dataclasses import dataclass
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..config_schema import cfg_option
from ..data.errors import DataError

_NOT_GIVEN = inspect.Parameter.empty
_THINGS, _STUFF = 'num_things_classes', 'num_stuff_classes'
#: Host heads whose ``num_classes`` counts a label set of their own, not the dataset's: mmdet's
#: FusedSemanticHead (HTC; SCNet's derives from it) segments COCO-stuff's 183 classes of its own
#: label maps (``seg_map``).
OWN_LABEL_SETS = ('FusedSemanticHead',)


@dataclass(frozen=True)
class DatasetClasses:
    """The classes a dataset gives the model: all of them, and the things/stuff split of a
    panoptic dataset (None for other datasets)."""
    classes: Tuple[str, ...]
    things: Optional[Tuple[str, ...]] = None
    stuff: Optional[Tuple[str, ...]] = None


def dataset_classes(cfg, dataset: Mapping,
                    classes: Optional[Sequence[str]] = None) -> Optional[DatasetClasses]:
    """``metainfo`` of the dataset config, else the dataset class's own ``METAINFO``;
    ``classes``: the classes already found (data_checks)."""
    host = _host_class(cfg, 'DATASETS', dataset.get('type'))
    meta = dict(getattr(host, 'METAINFO', None) or {})
    meta.update({k: v for k, v in (dataset.get('metainfo') or {}).items() if v})
    classes = tuple(classes or meta.get('classes') or ())
    if not classes:
        return None
    things, stuff = meta.get('thing_classes'), meta.get('stuff_classes')
    if things is None or stuff is None:
        return DatasetClasses(classes)
    return DatasetClasses(classes, tuple(things), tuple(stuff))


def _host_class(cfg, registry: str, name) -> Optional[type]:
    """The class the config's scope registers under ``name`` (None if unknown, or if the name is
    a builder function, e.g. a test-time wrapper's: its dict is looked through)."""
    if not isinstance(name, str):
        return None
    scope = cfg.get('default_scope') or 'mmengine'
    if '.' in name:
        scope, name = name.split('.', 1)
    try:
        found = getattr(importlib.import_module(f'{scope}.registry'), registry).get(name)
    except Exception:  # an unknown scope or type is check_type_names' or the Runner's to say
        return None
    return found if isinstance(found, type) else None


def constructor_arguments(cls: type) -> Dict[str, object]:
    """``{name: default}`` of the arguments ``cls(...)`` takes, following ``**kwargs`` up the
    class's bases (mmseg's ``UPerHead(**kwargs)`` -> ``BaseDecodeHead(num_classes, ...)``), the
    most derived class's first (mmseg's Mask2Former head counts ``num_classes``, the mmdet head
    it derives from ``num_things_classes``)."""
    found: Dict[str, object] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            break
        for p in parameters:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                found.setdefault(p.name, p.default)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return found


@dataclass(frozen=True)
class Setting:
    """One value of the config that counts classes, and the value it must have."""
    key: str
    have: object
    want: object


def _counted(node: Mapping, args: Mapping, key: str) -> object:
    value = node.get(key, args.get(key, _NOT_GIVEN))
    return None if value is _NOT_GIVEN else value


def _head_settings(path: str, node: Mapping, args: Mapping,
                   data: DatasetClasses) -> Tuple[List[Setting], Optional[int]]:
    """The class-counting settings of one head and their wanted values; the head's count."""
    counted = [key for key in args if key in ('num_classes', _THINGS)]
    if counted and counted[0] == 'num_classes':  # the most derived class's count decides
        count = len(data.classes)
        return [Setting(f'{path}.num_classes', _counted(node, args, 'num_classes'), count)], count
    if counted:
        things = len(data.things) if data.things is not None else len(data.classes)
        stuff = len(data.stuff) if data.stuff is not None else 0
        return [Setting(f'{path}.{_THINGS}', _counted(node, args, _THINGS), things),
                Setting(f'{path}.{_STUFF}', _counted(node, args, _STUFF), stuff)], things + stuff
    return [], None


def _loss_settings(path: str, node: Mapping, count: int) -> Iterator[Setting]:
    """A list ``class_weight`` of the head's losses: one per class (+1 for the background or
    no-object class of a softmax ``loss_cls``)."""
    for key, loss in node.items():
        if not (key.startswith('loss') and isinstance(loss, Mapping)):
            continue
        weights = loss.get('class_weight')
        if not isinstance(weights, (list, tuple)) or not weights:
            continue
        extra = 1 if key == 'loss_cls' and not loss.get('use_sigmoid', False) else 0
        if len(weights) != count + extra:
            last = [weights[-1]] if extra else []
            want = [weights[0]] * count + last
            yield Setting(f'{path}.{key}.class_weight', f'{len(weights)} weights', want)


def _heads(node, path: str, cfg) -> Iterator[Tuple[str, Mapping, Mapping]]:
    """``(config path, dict, constructor arguments)`` of every dict under ``model`` naming a
    class, ``rpn_head`` left out (see the module docstring)."""
    if isinstance(node, Mapping):
        cls = _host_class(cfg, 'MODELS', node.get('type'))
        own = cls is not None and any(k.__name__ in OWN_LABEL_SETS for k in cls.__mro__)
        if cls is not None and not own and not path.endswith('.rpn_head'):
            yield path, node, constructor_arguments(cls)
        elif cls is None and ('num_classes' in node or _THINGS in node):
            yield path, node, {k: _NOT_GIVEN for k in node}  # unknown class: what it says
        for key, value in node.items():
            if key != 'rpn_head':
                yield from _heads(value, f'{path}.{key}', cfg)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _heads(value, f'{path}.{i}', cfg)


def head_mismatches(cfg, data: DatasetClasses) -> List[Setting]:
    """Every class-counting setting of the model that disagrees with the dataset."""
    model = cfg.get('model')
    model = model.to_dict() if hasattr(model, 'to_dict') else model
    wrong: List[Setting] = []
    for path, node, args in _heads(model or {}, 'model', cfg):
        settings, count = _head_settings(path, node, args, data)
        wrong += [s for s in settings if s.have != s.want]
        if count is not None:
            wrong += list(_loss_settings(path, node, count))
    return wrong


def _shown(items: Sequence, limit: int = 5) -> str:
    items = list(items)
    return ', '.join(map(str, items[:limit])) + (f', ... ({len(items)} in all)'
                                                 if len(items) > limit else '')


def _describe(data: DatasetClasses) -> str:
    if data.things is not None:
        return (f'{len(data.classes)} classes: {len(data.things)} things '
                f'({_shown(data.things)}) and {len(data.stuff)} stuff ({_shown(data.stuff)})')
    return f'{len(data.classes)} classes ({_shown(data.classes)})'


def check_head_classes(cfg, loader: str, data: Optional[DatasetClasses]) -> None:
    """Raise :class:`DataError` when a head does not predict exactly the dataset's classes."""
    if data is None:
        return
    wrong = head_mismatches(cfg, data)
    if not wrong:
        return
    settings = ', '.join(f'{s.key} = {s.have}' for s in wrong)
    fix = ' '.join(f'{s.key}={cfg_option(s.want)}' for s in wrong)
    raise DataError(
        f'{settings}, but the {loader} dataset has {_describe(data)}: every head must predict '
        "exactly the dataset's classes (with more, a detector predicts labels the dataset has "
        "no class for, which fail mmdet's COCO metric at the first validation, and a "
        'segmentor trains outputs no pixel teaches; with fewer, the last classes are never '
        f'learnt). Fix: --cfg-options {fix} (or give the dataset metainfo=dict(classes=(...)) '
        'with the classes you train).')
