"""What mmdet's ``CocoDataset`` would drop from a COCO annotation file without a word, said once.

mmdet 3.3 reads a COCO file and leaves out, silently: an annotation marked ``ignore``; one whose
box has no area inside its image, has zero or negative area or is under one pixel wide or high; one
whose ``category_id`` is not a class of the config (a category the file does not even list, or
one the config's ``metainfo.classes`` leaves out); an annotation of an image the file does not
list. ``LoadAnnotations(with_mask=True)`` then ignores an object whose polygons all have fewer
than 3 points (or an odd number of coordinates) or whose RLE lacks ``counts``/``size``, and
crashes on one with no segmentation at all. In training, ``filter_cfg`` drops the images without
annotations (``filter_empty_gt``) and those smaller than ``min_size``.

:func:`audit_coco` applies those same rules, in mmdet's order, to the parsed JSON (one pass, no
image read) and returns an :class:`Audit`: the counts by reason, each with its first example.
Our tools log its one warning line per dataset and stop with one error line where mmdet would
crash (a missing or mistyped field it reads, a duplicate annotation id, an object without a
mask while masks are loaded) or where nothing usable remains for training.
(tests/data/test_coco_audit.py checks the counts against what mmdet's CocoDataset loads.)
"""
import numbers
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .errors import DataError

#: Why an annotation is dropped, in the order mmdet tests it (the first that applies counts).
REASONS = {
    'no_image': 'of an image id the file does not list',
    'ignore': "marked 'ignore'",
    'outside': 'with no box area inside its image (outside it, or zero wide or high)',
    'empty_box': 'with zero or negative area, or under 1 pixel wide or high',
    'unknown_category': 'with a category id the file does not list',
    'unused_category': "of a category not among the config's classes",
    'empty_polygon': 'with no polygon of 3 or more points (the object is ignored)',
    'bad_rle': 'with an RLE mask lacking counts/size (the object is ignored)',
}


@dataclass
class Audit:
    """What mmdet keeps of one COCO annotation file, and what it drops and why."""
    ann_path: str
    num_images: int = 0
    num_annotations: int = 0
    dropped: Dict[str, List[str]] = field(default_factory=dict)  # reason -> examples (<= 1)
    counts: Dict[str, int] = field(default_factory=dict)  # reason -> number dropped
    instances: int = 0  # the objects mmdet's data list holds (crowd, ignored ones included)
    usable_annotations: int = 0  # of those, the ones trained as objects
    images_without_annotations: int = 0
    first_image_without_annotations: Optional[str] = None
    images_left_out: int = 0  # by filter_cfg (training only)
    first_image_left_out: Optional[str] = None
    images_kept: int = 0
    training: bool = False

    def drop(self, reason: str, example: Callable[[], str]) -> None:
        """Count one dropped annotation; ``example()`` describes it (called for the first
        of each reason only: a COCO file has 860k annotations)."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if reason not in self.dropped:
            self.dropped[reason] = [example()]

    def warning(self) -> Optional[str]:
        """The one line that says what is dropped (None when nothing is)."""
        parts = []
        total = sum(self.counts.values())
        if total:
            reasons = '; '.join(f'{self.counts[r]} {REASONS[r]} (first: {self.dropped[r][0]})'
                                for r in REASONS if r in self.counts)
            parts.append(f'{total} of {self.num_annotations} annotations are left out: '
                         f'{reasons}')
        if self.images_left_out:
            parts.append(f'{self.images_left_out} of {self.num_images} images are left out of '
                         'training by filter_cfg (no annotation of the classes, or smaller than '
                         f'min_size), e.g. {self.first_image_left_out}')
        if not parts:
            return None
        return f'{self.ann_path}: ' + '; '.join(parts) + '. Fix or remove those entries if ' \
            'they should be trained.'


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _ident(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _field_error(ann_path: str, what: str, index: int, entry, key: str, want: str) -> DataError:
    ident = entry.get('id') if isinstance(entry, dict) else None
    name = f'{what} #{index}' + (f' (id {ident})' if ident is not None and key != 'id' else '')
    have = 'is missing' if not isinstance(entry, dict) or key not in entry else \
        f'is {entry[key]!r}'
    return DataError(f'{ann_path}: {name}: "{key}" {have}; mmdet needs {want}. Fix that entry '
                     'of the file (or remove it).')


def _check_images(ann_path: str, images: Sequence) -> Dict[object, dict]:
    by_id: Dict[object, dict] = {}
    for i, image in enumerate(images):
        if not isinstance(image, dict):
            raise DataError(f'{ann_path}: images #{i} is {image!r}, not an object with id, '
                            'file_name, width and height. Fix that entry of the file.')
        for key, want, ok in (('id', 'an integer id', lambda v: isinstance(v, int)
                               and not isinstance(v, bool)),
                              ('file_name', 'a file name', lambda v: isinstance(v, str) and v),
                              ('width', 'a positive number', lambda v: _number(v) and v > 0),
                              ('height', 'a positive number', lambda v: _number(v) and v > 0)):
            if not ok(image.get(key)):
                raise _field_error(ann_path, 'images', i, image, key, want)
        if image['id'] in by_id:
            raise DataError(f'{ann_path}: images #{i}: image id {image["id"]} is listed twice '
                            f'({by_id[image["id"]]["file_name"]} and {image["file_name"]}); '
                            'mmdet would keep one and merge their annotations. Give every '
                            'image its own id.')
        by_id[image['id']] = image
    return by_id


def _list(items) -> str:
    return ', '.join(map(str, items))


def _check_categories(ann_path: str, categories: Sequence) -> Dict[object, str]:
    by_id: Dict[object, str] = {}
    for i, category in enumerate(categories):
        if not isinstance(category, dict) or not _ident(category.get('id')):
            raise _field_error(ann_path, 'categories', i, category, 'id', 'an integer id')
        if not isinstance(category.get('name'), str):
            raise _field_error(ann_path, 'categories', i, category, 'name', 'a name')
        if category['id'] in by_id:
            raise DataError(f'{ann_path}: categories #{i}: category id {category["id"]} is '
                            f'listed twice ({by_id[category["id"]]!r} and {category["name"]!r}). '
                            'Give every category its own id.')
        by_id[category['id']] = category['name']
    return by_id


def _check_annotation(ann_path: str, i: int, ann) -> None:
    if not isinstance(ann, dict):
        raise DataError(f'{ann_path}: annotations #{i} is {ann!r}, not an object. Fix that '
                        'entry of the file.')
    bbox = ann.get('bbox')
    checks = (('id', 'a unique integer id', lambda v: isinstance(v, int)
               and not isinstance(v, bool)),
              ('image_id', 'the id of an image', _ident),
              ('category_id', 'the id of a category', _ident),
              ('bbox', 'a box [x, y, width, height] of 4 numbers',
               lambda v: isinstance(v, (list, tuple)) and len(v) == 4 and all(map(_number, v))),
              ('area', 'a number', _number))
    for key, want, ok in checks:
        if not ok(ann.get(key) if key != 'bbox' else bbox):
            raise _field_error(ann_path, 'annotations', i, ann, key, want)


def _well_formed(ann) -> bool:
    """The fast check of an annotation's fields (the precise one names what is wrong)."""
    if type(ann) is not dict:
        return False
    bbox = ann.get('bbox')
    return type(ann.get('id')) is int and type(ann.get('image_id')) in (int, str) and \
        type(ann.get('category_id')) in (int, str) and type(ann.get('area')) in (int, float) \
        and type(bbox) in (list, tuple) and len(bbox) == 4 and \
        all(type(v) in (int, float) for v in bbox)


def _example(reason: str, ann: dict, image: dict, categories: dict) -> str:
    detail = {'outside': f', bbox {ann["bbox"]} in {image["width"]}x{image["height"]}',
              'empty_box': f', bbox {ann["bbox"]}, area {ann["area"]}',
              'unknown_category': f', category_id {ann["category_id"]}',
              'unused_category': f', category {categories.get(ann["category_id"])!r}'}
    return f'annotation {ann["id"]} of {image["file_name"]}' + detail.get(reason, '')


def _mask_problem(segmentation) -> Optional[str]:
    """Which reason LoadAnnotations(with_mask=True) would ignore the object for (None: kept);
    'missing' when there is no usable segmentation at all (mmdet crashes on it)."""
    if not segmentation:
        return 'missing'
    if isinstance(segmentation, list):
        valid = [p for p in segmentation if isinstance(p, (list, tuple)) and len(p) >= 6
                 and len(p) % 2 == 0]
        return None if valid else 'empty_polygon'
    if isinstance(segmentation, dict):
        ok = segmentation.get('counts') is not None and segmentation.get('size') is not None \
            and isinstance(segmentation['counts'], (list, str))
        return None if ok else 'bad_rle'
    return 'missing'  # neither polygons nor RLE: mmdet fails on it as on a missing one


def audit_coco(data: dict, ann_path: str, classes: Optional[Sequence[str]], *,
               with_mask: bool = False, training: bool = False,
               filter_cfg: Optional[dict] = None) -> Audit:
    """What mmdet's CocoDataset (and LoadAnnotations) would make of the parsed file ``data``.

    ``classes``: the config's classes (None: all the file's categories); ``training``: the
    dataset is not in test mode, so ``filter_cfg`` applies. Raises :class:`DataError` where
    mmdet would crash or nothing usable remains for training."""
    images = _check_images(ann_path, data.get('images') or [])
    categories = _check_categories(ann_path, data.get('categories') or [])
    names = set(classes) if classes else set(categories.values())
    class_ids = {cid for cid, name in categories.items() if name in names}
    for name in names:
        same = [cid for cid, other in categories.items() if other == name]
        if len(same) > 1:
            raise DataError(f'{ann_path}: the category name {name!r} has {len(same)} ids '
                            f'({_list(same)}); mmdet would give them different labels than the '
                            'config\'s classes. Give each category its own name.')
    annotations = data.get('annotations') or []
    if not isinstance(annotations, list):
        raise DataError(f'{ann_path}: "annotations" is {type(annotations).__name__}, not a '
                        'list. Fix the file.')
    audit = Audit(ann_path, num_images=len(images), num_annotations=len(annotations),
                  training=training)
    seen_ids: Dict[int, int] = {}
    with_class: set = set()  # images with any annotation of a class (mmdet's cat_img_map)
    instances: Dict[object, int] = {}  # per image: the objects mmdet's data list holds
    usable: Dict[object, int] = {}  # per image: those that train (not crowd, not ignored)
    without_mask: List[Tuple[int, object]] = []
    for i, ann in enumerate(annotations):
        if not _well_formed(ann):
            _check_annotation(ann_path, i, ann)
        if ann['id'] in seen_ids:
            raise DataError(f'{ann_path}: annotations #{seen_ids[ann["id"]]} and #{i} have the '
                            f'same id {ann["id"]}; mmdet needs unique annotation ids. Number '
                            'the annotations afresh.')
        seen_ids[ann['id']] = i
        image = images.get(ann['image_id'])
        if image is None:
            audit.drop('no_image', lambda: f'annotation {ann["id"]}, image_id {ann["image_id"]}')
            continue
        if ann['category_id'] in class_ids:
            with_class.add(ann['image_id'])
        x, y, w, h = ann['bbox']
        inter_w = max(0, min(x + w, image['width']) - max(x, 0))
        inter_h = max(0, min(y + h, image['height']) - max(y, 0))
        if ann.get('ignore', False):
            reason = 'ignore'
        elif inter_w * inter_h == 0:
            reason = 'outside'
        elif ann['area'] <= 0 or w < 1 or h < 1:
            reason = 'empty_box'
        elif ann['category_id'] not in categories:
            reason = 'unknown_category'
        elif ann['category_id'] not in class_ids:
            reason = 'unused_category'
        else:
            reason = _mask_problem(ann.get('segmentation')) if with_mask else None
            if reason == 'missing':
                without_mask.append((ann['id'], image['file_name']))
                reason = None
        if reason is not None:
            audit.drop(reason, lambda: _example(reason, ann, image, categories))
            if reason not in ('empty_polygon', 'bad_rle'):
                continue
        instances[ann['image_id']] = instances.get(ann['image_id'], 0) + 1
        if reason is None and not ann.get('iscrowd', False):
            usable[ann['image_id']] = usable.get(ann['image_id'], 0) + 1
    if without_mask:
        ident, name = without_mask[0]
        raise DataError(f'{ann_path}: {len(without_mask)} annotation(s) have no polygon or RLE '
                        f'segmentation (first: annotation {ident} of {name}), but the pipeline '
                        'loads masks (LoadAnnotations with_mask=True), where mmdet fails on '
                        'them. Give them a polygon or RLE mask, remove them, or mark them '
                        '"ignore": 1.')
    _count_images(audit, images, with_class, instances, usable, training, filter_cfg)
    if training and (not audit.usable_annotations or not audit.images_kept):
        raise DataError(f'{ann_path}: nothing usable remains for training: '
                        f'{audit.usable_annotations} of {audit.num_annotations} annotations and '
                        f'{audit.images_kept} of {audit.num_images} images are kept. '
                        + (audit.warning() or '').split(': ', 1)[-1])
    return audit


def _count_images(audit: Audit, images: Dict[object, dict], with_class: set,
                  instances: Dict[object, int], usable: Dict[object, int], training: bool,
                  filter_cfg: Optional[dict]) -> None:
    """Images without annotations, those ``filter_cfg`` leaves out of training, and the
    objects of the images kept."""
    filter_cfg = filter_cfg or {}
    filter_empty = training and bool(filter_cfg.get('filter_empty_gt', False))
    min_size = filter_cfg.get('min_size', 0) if training else 0
    for image_id, image in images.items():
        if image_id not in usable:
            audit.images_without_annotations += 1
            audit.first_image_without_annotations = audit.first_image_without_annotations \
                or image['file_name']
        if (filter_empty and image_id not in with_class) or \
                min(image['width'], image['height']) < (min_size or 0):
            audit.images_left_out += 1
            audit.first_image_left_out = audit.first_image_left_out or image['file_name']
        else:
            audit.images_kept += 1
            audit.instances += instances.get(image_id, 0)
            audit.usable_annotations += usable.get(image_id, 0)
