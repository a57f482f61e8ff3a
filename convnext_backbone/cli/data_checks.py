"""What our tools check in the data itself before the model is built (after ``checks``
has made sure the folders are there).

mmdet and mmseg read annotations and images lazily, deep inside dataset classes and data
loaders: a JSON syntax error is a traceback from the dataset's ``__init__``, an image that does
not decode is a crash in a pipeline transform minutes or hours into training, classes that
match no category silently give a dataset without objects, a head with fewer outputs than the
classes silently trains labels it cannot predict (or fails in the loss with an index error),
annotations mmdet cannot use are dropped without a word.
Here every such mistake is one :class:`DataError` naming the file (and position) and the fix,
and what the host would drop is said once.

What is checked, per dataset of a loader (wrappers such as RepeatDataset looked through):

* COCO-style ``ann_file`` (``.json``): parsed, with file, line and column of a syntax error;
  it must hold ``images``/``annotations``/``categories`` lists and at least one image;
  ``metainfo.classes`` must each name a category (a close name is suggested). The entries
  are audited as mmdet would read them (``data.coco_audit``): a field mmdet would crash on is
  an error naming the entry; what it would drop (unknown categories, empty or outside boxes,
  empty polygons, images without annotations) is one warning line with counts and a first
  example; a training set left with nothing usable is an error.
* mmseg folder layout (``data_prefix.img_path`` / ``seg_map_path``, no ``ann_file``): at least
  one image with ``img_suffix``, and a label map for each.
* Every listed image (and label map) exists and is not empty: one ``stat`` per file, seconds
  for COCO's 118k. Up to :data:`DECODE_LIMIT` of them, spread evenly over the list, are also
  decoded; one the sample misses is named when the run loads it (the configs' pipelines load
  images with ``convnext_backbone.CheckedLoadImageFromFile``).
* A validation or test pipeline cannot skip undecodable images (``on_error='skip'``): its
  metric would silently change.
* The model's heads: each must predict exactly the dataset's classes (``metainfo.classes``,
  else the dataset class's own; ``head_classes``).
"""
import difflib
import json
import logging
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from ..data.coco_audit import audit_coco
from ..data.errors import DataError
from ..data.image_files import missing_and_empty, sample_positions, undecodable
from .checks import loader_datasets
from .head_classes import check_head_classes, dataset_classes

#: At most this many images of a dataset are decoded at startup, spread evenly over it (all of
#: a smaller set); every image is looked for.
DECODE_LIMIT = 200


def _shown(items: Sequence, limit: int = 3) -> str:
    items = list(items)
    return ', '.join(map(str, items[:limit])) + (f', ... ({len(items)} in all)'
                                                 if len(items) > limit else '')


def read_json(path: str) -> object:
    """``json.load`` with the file, line and column of a syntax error in the message."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise DataError(f'{path}:{error.lineno}:{error.colno}: the annotation file is not valid '
                        f'JSON ({error.msg}). Fix the file at that position, or regenerate/'
                        'download it again (a truncated copy ends early).') from None
    except UnicodeDecodeError as error:
        raise DataError(f'{path}: the annotation file is not UTF-8 text ({error.reason} at byte '
                        f'{error.start}): is it really the JSON file? Point ann_file at the '
                        'COCO-style .json.') from None


def check_images(paths: Sequence[str], where: str) -> None:
    """Every file exists and is not empty; up to DECODE_LIMIT of them, evenly spread, decode."""
    missing, empty = missing_and_empty(paths)
    if missing:
        raise DataError(f'{where}: {len(missing)} listed image(s) are missing: {_shown(missing)}. '
                        'Copy them there, or point data_root/data_prefix at the folder that '
                        'holds them.')
    if empty:
        raise DataError(f'{where}: {len(empty)} listed image(s) are empty files (0 bytes): '
                        f'{_shown(empty)}. Copy them again (an interrupted download or copy '
                        'leaves empty files), or remove them from the dataset.')
    for position in sample_positions(len(paths), DECODE_LIMIT):
        why = undecodable(paths[position])
        if why:
            raise DataError(f'{paths[position]} does not decode as an image ({why}). Replace the '
                            'file (re-download or re-export it), or remove it from the dataset.')


def _coco_images(dataset: dict, root: str, ann_path: str,
                 data: dict) -> Tuple[List[str], List[str]]:
    """(image paths, category names) of a COCO-style annotation file, checked for its shape."""
    if not isinstance(data, dict) or not isinstance(data.get('images'), list) or \
            not isinstance(data.get('categories'), list):
        have = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise DataError(f'{ann_path} is not a COCO-style annotation file: it needs "images", '
                        f'"annotations" and "categories" lists (it has {have}). Point ann_file '
                        'at instances_*.json, or convert your annotations to COCO format.')
    prefix = (dataset.get('data_prefix') or {}).get('img', '')
    paths = [osp.join(root, prefix, str(image.get('file_name', '')))
             for image in data['images'] if isinstance(image, dict)]
    names = [str(c.get('name')) for c in data['categories'] if isinstance(c, dict)]
    return paths, names


def _seg_images(dataset: dict, root: str) -> List[str]:
    """Image and label-map paths of an mmseg folder-layout dataset, pairs checked."""
    prefix = dataset.get('data_prefix') or {}
    img_dir = osp.join(root, prefix.get('img_path', ''))
    seg_dir = osp.join(root, prefix.get('seg_map_path', '')) if prefix.get('seg_map_path') \
        else None
    img_suffix = dataset.get('img_suffix', '.jpg')
    seg_suffix = dataset.get('seg_map_suffix', '.png')
    images = sorted(osp.relpath(osp.join(d, f), img_dir) for d, _, files in os.walk(img_dir)
                    for f in files if f.endswith(img_suffix))
    if not images:
        raise DataError(f'{img_dir}: the dataset is empty: no {img_suffix} image in it. Put the '
                        'images there, or fix data_prefix.img_path / img_suffix in the config.')
    paths = [osp.join(img_dir, name) for name in images]
    if seg_dir is not None:
        maps = [osp.join(seg_dir, name[:-len(img_suffix)] + seg_suffix) for name in images]
        missing = [m for m in maps if not osp.isfile(m)]
        if missing:
            raise DataError(f'{seg_dir}: {len(missing)} image(s) have no label map: '
                            f'{_shown(missing)}. Each image needs its {seg_suffix} label map '
                            'of the same name: add them, or remove those images.')
        paths += maps
    return paths


def _class_names(cfg: Config, dataset: dict) -> Optional[Tuple[str, ...]]:
    """``metainfo.classes`` of the config, else the dataset class's own (None if unknown)."""
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes:
        return tuple(classes)
    return _default_classes(cfg, dataset)


def _default_classes(cfg: Config, dataset: dict) -> Optional[Tuple[str, ...]]:
    """The dataset class's own ``METAINFO['classes']`` (None if unknown)."""
    try:  # the host's registry (mmdet.registry / mmseg.registry) knows its dataset classes
        import importlib
        registry = importlib.import_module(f"{cfg.get('default_scope')}.registry")
        cls = registry.DATASETS.get(dataset.get('type'))
        return tuple(getattr(cls, 'METAINFO', {}).get('classes') or ()) or None
    except Exception:  # an unknown type is check_type_names' or the Runner's to report
        return None


def _check_classes(ann_path: str, classes: Optional[Sequence[str]], names: List[str],
                   dataset: dict) -> None:
    if not classes:
        return
    unknown = [c for c in classes if c not in names]
    if not unknown:
        return
    if not (dataset.get('metainfo') or {}).get('classes'):
        raise DataError(
            f'{ann_path}: {len(unknown)} of the {len(classes)} classes of '
            f'{dataset.get("type")} (its own: the config gives no metainfo.classes) match no '
            f'category of the file ({_shown(unknown)}); those classes would get no objects, and '
            f'the file\'s categories ({_shown(names, 6)}) would not be trained unless they are '
            'among them. Give the dataset metainfo=dict(classes=(...)) with the category names '
            'you train (and every head num_classes=len(classes)).')
    hints = []
    for name in unknown[:3]:
        close = difflib.get_close_matches(name, names, n=1)
        hints.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    raise DataError(
        f'metainfo.classes: {len(unknown)} of {len(classes)} classes match no category of '
        f'{ann_path}: {", ".join(hints)}; those classes would get no objects. Its categories '
        f'are: {_shown(names, 12)}. Spell the classes as the categories are named.')


def check_num_classes(cfg: Config, classes: Sequence[str], loader: str,
                      dataset: Optional[dict] = None) -> None:
    """Every head predicts exactly the dataset's classes (``head_classes``)."""
    check_head_classes(cfg, loader, dataset_classes(cfg, dataset or {}, classes))


def _pipeline_steps(dataset: dict) -> Iterator[dict]:
    for step in dataset.get('pipeline') or ():
        if isinstance(step, dict):
            yield step


def _loads_masks(dataset: dict) -> bool:
    """Whether the dataset's pipeline loads instance masks (LoadAnnotations with_mask=True)."""
    return any(str(step.get('type', '')).endswith('LoadAnnotations') and step.get('with_mask')
               for step in _pipeline_steps(dataset))


def check_pipeline(dataset: dict, loader: str) -> None:
    """A test-mode dataset cannot skip an undecodable image (mmengine raises, the metric would
    change): ``on_error='skip'`` belongs in training pipelines only."""
    if not dataset.get('test_mode'):
        return
    for step in _pipeline_steps(dataset):
        if str(step.get('type', '')).endswith('CheckedLoadImageFromFile') and \
                step.get('on_error') == 'skip':
            raise DataError(f"{loader}: on_error='skip' in a validation/test pipeline: a test "
                            'cannot leave images out (its metric would change). Keep '
                            "on_error='stop' there (skip only in train_dataloader's pipeline).")


def check_data(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise :class:`DataError` for the first problem in the loaders' data (module docstring);
    log what mmdet would drop from a COCO file, one line per dataset."""
    for loader, dataset in loader_datasets(cfg, loaders):
        if 'dataset' in dataset or 'datasets' in dataset:
            continue  # a wrapper: its inner datasets come next
        root = dataset.get('data_root') or ''
        ann_file = dataset.get('ann_file') or ''
        classes = _class_names(cfg, dataset)
        check_pipeline(dataset, loader)
        if isinstance(ann_file, str) and ann_file.endswith('.json'):
            ann_path = osp.join(root, ann_file)
            data = read_json(ann_path)
            paths, names = _coco_images(dataset, root, ann_path, data)
            if not paths:
                raise DataError(f'{ann_path}: the dataset is empty: its "images" list has no '
                                'entries. Point ann_file at the annotations of your images.')
            _check_classes(ann_path, classes, names, dataset)
            if classes:
                check_num_classes(cfg, classes, loader, dataset)
            audit = audit_coco(data, ann_path, classes, with_mask=_loads_masks(dataset),
                               training=not dataset.get('test_mode', False),
                               filter_cfg=dataset.get('filter_cfg'))
            if audit.warning():
                print_log(f'{loader}: {audit.warning()}', logger='current',
                          level=logging.WARNING)
            check_images(paths, ann_path)
            continue
        if not ann_file and (dataset.get('data_prefix') or {}).get('img_path') is not None:
            paths = _seg_images(dataset, root)
            check_images(paths, osp.join(root, dataset['data_prefix']['img_path']))
        if classes:
            check_num_classes(cfg, classes, loader, dataset)
