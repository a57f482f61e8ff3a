"""data.coco_audit: what mmdet drops from a COCO file is counted as mmdet drops it, said in one
line; where mmdet would crash, or nothing usable remains, one error. The reference is mmdet's own
CocoDataset and LoadAnnotations reading the same file from disk: real COCO content (crowd boxes
with uncompressed RLE, compressed RLE, polygons, zero-area and outside boxes, empty polygons,
images without annotations, non-contiguous category ids, an id no category has)."""
import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from convnext_backbone.cli.data_checks import DataError
from convnext_backbone.data.coco_audit import audit_coco

CATEGORIES = [dict(id=1, name='person'), dict(id=3, name='car'), dict(id=18, name='dog'),
              dict(id=90, name='toothbrush')]  # COCO's ids skip numbers
SIZES = [(640, 480), (480, 640), (500, 375), (47, 33)]  # (width, height)


def _polygon(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _rle(x, y, w, h, width, height, compressed=True):
    mask = np.zeros((height, width), np.uint8, order='F')
    mask[y:y + h, x:x + w] = 1
    if compressed:
        rle = mask_utils.encode(mask)
        rle['counts'] = rle['counts'].decode()
        return rle
    counts, flat, run, value = [], mask.flatten(order='F'), 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            run, value = 0, pixel
        run += 1
    counts.append(run)
    return dict(counts=counts, size=[height, width])


def real_world_file():
    """A COCO file as real ones are: every kind mmdet keeps and every kind it drops."""
    images = [dict(id=10 + i, file_name=f'{i:012d}.jpg', width=w, height=h)
              for i, (w, h) in enumerate(SIZES * 3)]  # 12 images, ids 10..21
    anns = []

    def add(image, category, bbox, **extra):
        x, y, w, h = bbox
        ann = dict(id=100 + len(anns), image_id=image, category_id=category, bbox=bbox,
                   area=extra.pop('area', w * h), iscrowd=0,
                   segmentation=extra.pop('segmentation', _polygon(*bbox)))
        ann.update(extra)
        anns.append(ann)

    add(10, 1, [10, 10, 50, 80])                                      # kept, polygon
    add(10, 3, [100, 50, 40, 30], segmentation=_rle(100, 50, 40, 30, 640, 480))  # kept, RLE
    add(10, 1, [200, 100, 90, 90], iscrowd=1,
        segmentation=_rle(200, 100, 90, 90, 640, 480, compressed=False))  # crowd: kept, ignored
    add(11, 18, [5, 5, 0, 20], area=0)                                 # zero width
    add(11, 90, [30, 40, 20, 20])                                      # kept
    add(12, 3, [600, 400, 30, 30])                                     # outside the 500x375 image
    add(12, 5, [10, 10, 20, 20])                                       # category 5 not listed
    add(13, 1, [2, 2, 10, 10], segmentation=[[2, 2, 12, 2]])           # polygon of 2 points
    add(14, 18, [10, 10, 20, 20], area=-4.0)                           # negative area
    add(15, 3, [10, 10, 0.5, 20])                                      # under 1 pixel wide
    add(16, 1, [10, 10, 20, 20], segmentation=dict(size=[375, 500]))  # RLE without counts
    add(99, 1, [10, 10, 20, 20])                                       # image 99 not listed
    add(17, 90, [1, 1, 20, 20], ignore=1)                              # marked ignore
    add(18, 3, [4, 4, 40, 40])                                         # kept
    # images 19, 20, 21: no annotation at all; image 13 (33x47) only an unusable one
    return dict(images=images, annotations=anns, categories=copy.deepcopy(CATEGORIES))


def write(tmp_path, data, name='instances_train2017.json'):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def mmdet_reading(path, classes, test_mode, filter_cfg, with_mask=True):
    """What mmdet 3.3 makes of the file: its data list and, through LoadAnnotations, which
    objects train (not ignored)."""
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    dataset = CocoDataset(ann_file=str(path), metainfo=dict(classes=classes), pipeline=[],
                          test_mode=test_mode, filter_cfg=filter_cfg, data_prefix=dict(img=''))
    load = LoadAnnotations(with_bbox=True, with_mask=with_mask)
    trained = 0
    for i in range(len(dataset)):
        info = copy.deepcopy(dataset.get_data_info(i))
        info['ori_shape'] = (info['height'], info['width'])
        out = load(info)
        trained += int((~out['gt_ignore_flags']).sum())
    return dataset, trained


@pytest.mark.parametrize('classes, test_mode, filter_cfg', [
    (('person', 'car', 'dog', 'toothbrush'), False, dict(filter_empty_gt=True, min_size=40)),
    (('person', 'car', 'dog', 'toothbrush'), True, None),
    (('car', 'person'), False, dict(filter_empty_gt=True)),  # a subset, in another order
    (('person', 'car', 'dog', 'toothbrush'), False, None),
], ids=['train-filtered', 'test-mode', 'class-subset', 'train-unfiltered'])
def test_the_audit_counts_what_mmdet_loads(tmp_path, classes, test_mode, filter_cfg):
    path = write(tmp_path, real_world_file())
    dataset, trained = mmdet_reading(path, classes, test_mode, filter_cfg)
    audit = audit_coco(json.loads(path.read_text()), str(path), classes, with_mask=True,
                       training=not test_mode, filter_cfg=filter_cfg)
    assert audit.images_kept == len(dataset)
    assert audit.instances == sum(len(dataset.get_data_info(i)['instances'])
                                  for i in range(len(dataset)))
    assert audit.usable_annotations == trained


def test_one_warning_line_with_counts_and_first_examples(tmp_path):
    path = write(tmp_path, real_world_file())
    audit = audit_coco(json.loads(path.read_text()), str(path), None, with_mask=True,
                       training=True, filter_cfg=dict(filter_empty_gt=True, min_size=40))
    line = audit.warning()
    assert '\n' not in line
    assert line == (
        f'{path}: 9 of 14 annotations are left out: '
        '1 of an image id the file does not list (first: annotation 111, image_id 99); '
        "1 marked 'ignore' (first: annotation 112 of 000000000007.jpg); "
        '2 with no box area inside its image (outside it, or zero wide or high) (first: '
        'annotation 103 of 000000000001.jpg, bbox [5, 5, 0, 20] in 480x640); '
        '2 with zero or negative area, or under 1 pixel wide or high (first: annotation 108 of '
        '000000000004.jpg, bbox [10, 10, 20, 20], area -4.0); '
        '1 with a category id the file does not list (first: annotation 106 of '
        '000000000002.jpg, category_id 5); '
        '1 with no polygon of 3 or more points (the object is ignored) (first: annotation 107 '
        'of 000000000003.jpg); '
        '1 with an RLE mask lacking counts/size (the object is ignored) (first: annotation 110 '
        'of 000000000006.jpg); '
        # left out: 19, 20, 21 (no annotation), 13, 17 (47x33, under min_size); 17 has only an
        # 'ignore' one and 16 only an invalid one: mmdet keeps those (they have annotations)
        '5 of 12 images are left out of training by filter_cfg (no annotation of the classes, '
        'or smaller than min_size), e.g. 000000000003.jpg. '
        'Fix or remove those entries if they should be trained.')


def test_a_clean_file_says_nothing(tmp_path):
    data = real_world_file()
    data['annotations'] = [a for a in data['annotations'] if a['id'] in (100, 101, 102, 104)]
    data['images'] = [i for i in data['images'] if i['id'] in (10, 11)]
    audit = audit_coco(data, 'ann.json', None, with_mask=True, training=True,
                       filter_cfg=dict(filter_empty_gt=True))
    assert audit.warning() is None
    assert (audit.instances, audit.usable_annotations, audit.images_kept) == (4, 3, 2)


def test_nothing_usable_for_training_is_an_error(tmp_path):
    data = real_world_file()
    for ann in data['annotations']:
        ann['area'] = 0
    with pytest.raises(DataError, match=r'nothing usable remains for training: 0 of 14 '
                       r'annotations and 9 of 12 images are kept. 14 of 14 annotations are '
                       r'left out'):
        audit_coco(data, 'ann.json', None, training=True, filter_cfg=dict(filter_empty_gt=True))
    # a test-mode set without usable annotations is only reported (e.g. COCO test-dev)
    assert audit_coco(data, 'ann.json', None, training=False).warning().startswith(
        'ann.json: 14 of 14 annotations are left out')


def _without(key, index=0):
    def change(data):
        del data['annotations'][index][key]
    return change


def _set(part, key, value, index=0):
    def change(data):
        data[part][index][key] = value
    return change


def _duplicate_annotation_id(data):
    data['annotations'][1]['id'] = data['annotations'][0]['id']


@pytest.mark.parametrize('change, message', [
    (_without('bbox'), 'annotations #0 (id 100): "bbox" is missing'),
    (_set('annotations', 'bbox', [1, 2, 3]), 'annotations #0 (id 100): "bbox" is [1, 2, 3]'),
    (_set('annotations', 'bbox', '10 10 5 5'), '"bbox" is \'10 10 5 5\''),
    (_without('area'), 'annotations #0 (id 100): "area" is missing'),
    (_without('category_id'), '"category_id" is missing'),
    (_set('images', 'width', None), 'images #0 (id 10): "width" is None'),
    (_set('categories', 'id', [1]), 'categories #0: "id" is [1]'),
    (_duplicate_annotation_id, 'annotations #0 and #1 have the same id 100'),
    (_set('annotations', 'segmentation', []), '1 annotation(s) have no polygon or RLE '
     'segmentation (first: annotation 100 of 000000000000.jpg), but the pipeline loads masks'),
    (_set('annotations', 'segmentation', 'x'), '1 annotation(s) have no polygon or RLE '
     'segmentation (first: annotation 100 of 000000000000.jpg)'),
], ids=['no-bbox', 'bbox-of-3', 'bbox-string', 'no-area', 'no-category', 'width-null',
        'category-id-list', 'duplicate-id', 'no-segmentation-with-masks',
        'segmentation-string-with-masks'])
def test_what_mmdet_would_crash_on_is_one_error_naming_the_entry(tmp_path, change, message):
    data = real_world_file()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(DataError) as error:
        audit_coco(json.loads(path.read_text()), str(path), None, with_mask=True,
                   training=True, filter_cfg=dict(filter_empty_gt=True))
    assert message in str(error.value) and str(path) in str(error.value)
    # ... and mmdet itself does fail on that file (a traceback, not a message)
    with pytest.raises(Exception) as host:
        mmdet_reading(path, [c['name'] for c in CATEGORIES], False, dict(filter_empty_gt=True))
    assert not isinstance(host.value, DataError)
