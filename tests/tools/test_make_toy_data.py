"""tools/make_toy_data.py: deterministic toy COCO / ADE20K sets the real dataset classes load."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'make_toy_data.py'
ARGS = ['--num-train', '6', '--num-val', '3', '--size', '64']
SIZE = 64


def _run(root, *extra):
    proc = subprocess.run([sys.executable, str(TOOL), '--root', str(root), *ARGS, *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _load_tool():
    spec = importlib.util.spec_from_file_location('make_toy_data', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    """The same parameters generated into two different directories."""
    a, b = tmp_path_factory.mktemp('toy_a'), tmp_path_factory.mktemp('toy_b')
    out = _run(a)
    assert 'toy coco' in out and 'toy ade' in out and 'generated' in out
    _run(b)
    return a, b


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob('*') if p.is_file())


def test_output_is_byte_identical_across_runs(roots):
    a, b = roots
    files = _files(a)
    assert files == _files(b)
    assert len([f for f in files if f.suffix == '.jpg']) == 2 * (6 + 3)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_rerun_with_same_parameters_is_a_noop_and_new_parameters_regenerate(tmp_path):
    _run(tmp_path, '--only', 'coco')
    ann = tmp_path / 'coco' / 'annotations' / 'instances_val2017.json'
    mtime = ann.stat().st_mtime_ns
    assert 'nothing to do' in _run(tmp_path, '--only', 'coco')
    assert ann.stat().st_mtime_ns == mtime
    assert not (tmp_path / 'ade').exists()
    _run(tmp_path, '--only', 'coco', '--seed', '1')
    assert len(json.loads(ann.read_text())['images']) == 3
    assert len(list((tmp_path / 'coco' / 'train2017').glob('*.jpg'))) == 6


def test_refuses_to_overwrite_a_directory_that_is_not_a_toy_set(tmp_path):
    (tmp_path / 'coco' / 'annotations').mkdir(parents=True)
    proc = subprocess.run([sys.executable, str(TOOL), '--root', str(tmp_path), *ARGS],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and 'refusing' in proc.stderr
    assert (tmp_path / 'coco' / 'annotations').is_dir()


def test_coco_annotations_load_and_masks_agree_with_boxes(roots):
    from pycocotools.coco import COCO

    tool = _load_tool()
    kinds = set()
    for split, num in [('train', 6), ('val', 3)]:
        coco = COCO(str(roots[0] / 'coco' / 'annotations' / f'instances_{split}2017.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(tool.TOY_COCO_CLASSES)
        assert sorted(coco.getCatIds()) == list(range(1, len(tool.TOY_COCO_CLASSES) + 1))
        assert len(coco.getImgIds()) == num
        for img_id in coco.getImgIds():
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 1 <= len(anns) <= 4
            info = coco.loadImgs(img_id)[0]
            with Image.open(roots[0] / 'coco' / f'{split}2017' / info['file_name']) as img:
                assert img.size == (SIZE, SIZE) and img.mode == 'RGB'
            for ann in anns:
                kinds.add('rle' if isinstance(ann['segmentation'], dict) else 'polygon')
                mask = coco.annToMask(ann)
                assert mask.shape == (SIZE, SIZE)
                ys, xs = np.nonzero(mask)
                x, y, w, h = ann['bbox']
                expected = [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
                np.testing.assert_allclose([x, y, w, h], expected, atol=1)
                assert abs(ann['area'] - mask.sum()) <= 0.05 * mask.sum()
                assert ann['iscrowd'] == 0
    assert kinds == {'rle', 'polygon'}


def test_ade_labels_are_single_channel_uint8_in_range(roots):
    tool = _load_tool()
    ade = roots[0] / 'ade' / 'ADEChallengeData2016'
    seen = set()
    for split, num in [('training', 6), ('validation', 3)]:
        labels = sorted((ade / 'annotations' / split).glob('*.png'))
        images = sorted((ade / 'images' / split).glob('*.jpg'))
        assert [p.stem for p in labels] == [p.stem for p in images]
        assert len(labels) == num
        for path in labels:
            with Image.open(path) as im:
                assert im.mode == 'L' and im.size == (SIZE, SIZE)
                arr = np.asarray(im)
            assert arr.dtype == np.uint8
            seen |= set(np.unique(arr).tolist())
    assert seen <= set(range(len(tool.TOY_ADE_CLASSES) + 1))
    assert {0, 1, 2} <= seen and len(seen) >= 4  # ignore band, sky, ground and some shapes


def test_mmdet_coco_dataset_loads_polygons_and_rle(roots):
    pytest.importorskip('mmdet')
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    from pycocotools.coco import COCO

    tool = _load_tool()
    register_all_modules(init_default_scope=False)
    coco_root = roots[0] / 'coco'
    for split, num in [('train', 6), ('val', 3)]:
        ann_file = f'annotations/instances_{split}2017.json'
        coco = COCO(str(coco_root / ann_file))
        with DefaultScope.overwrite_default_scope('mmdet'):
            ds = CocoDataset(
                data_root=str(coco_root), ann_file=ann_file, data_prefix=dict(img=f'{split}2017/'),
                metainfo=dict(classes=tool.TOY_COCO_CLASSES),
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
            assert len(ds) == num
            for i in range(len(ds)):
                item = ds[i]
                masks, boxes = item['gt_masks'], item['gt_bboxes']
                anns = coco.loadAnns(coco.getAnnIds(imgIds=item['img_id']))
                assert item['img'].shape == (SIZE, SIZE, 3)
                assert masks.masks.shape == (len(anns), SIZE, SIZE) and len(boxes) == len(anns)
                assert not item['gt_ignore_flags'].any()  # RLE with iscrowd=0 is not ignored
                np.testing.assert_array_equal(item['gt_bboxes_labels'],
                                              [a['category_id'] - 1 for a in anns])
                for mask, ann in zip(masks.masks, anns):
                    np.testing.assert_array_equal(mask, coco.annToMask(ann))
                np.testing.assert_allclose(masks.get_bboxes(type(boxes)).tensor, boxes.tensor,
                                           atol=1)


def test_mmseg_dataset_loads_labels_with_reduce_zero_label(roots):
    pytest.importorskip('mmseg')
    from mmengine.registry import DefaultScope
    from mmseg.datasets import BaseSegDataset
    from mmseg.utils import register_all_modules

    tool = _load_tool()
    register_all_modules(init_default_scope=False)
    ade = roots[0] / 'ade' / 'ADEChallengeData2016'
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = BaseSegDataset(
            data_root=str(ade), img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
            data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
            metainfo=dict(classes=tool.TOY_ADE_CLASSES),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
        assert len(ds) == 3
        for i in range(len(ds)):
            item = ds[i]
            raw = np.asarray(Image.open(item['seg_map_path']))
            seg = item['gt_seg_map']
            assert seg.shape == (SIZE, SIZE)
            np.testing.assert_array_equal(seg[raw == 0], 255)
            np.testing.assert_array_equal(seg[raw > 0], raw[raw > 0] - 1)
            assert set(np.unique(seg).tolist()) <= set(range(len(tool.TOY_ADE_CLASSES))) | {255}


def test_mmdet_coco_metric_scores_the_ground_truth_as_perfect(roots):
    """COCOeval accepts the polygon and RLE (iscrowd 0) ground truth: predicting it gives AP 1."""
    pytest.importorskip('mmdet')
    import torch
    from mmdet.evaluation import CocoMetric
    from pycocotools.coco import COCO

    tool = _load_tool()
    ann_file = str(roots[0] / 'coco' / 'annotations' / 'instances_train2017.json')
    coco = COCO(ann_file)
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=tool.TOY_COCO_CLASSES)
    for img_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)])
        masks = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns])).bool()
        pred = dict(bboxes=boxes, scores=torch.ones(len(anns)), masks=masks,
                    labels=torch.tensor([a['category_id'] - 1 for a in anns]))
        metric.process({}, [dict(img_id=img_id, ori_shape=(SIZE, SIZE), pred_instances=pred)])
    results = metric.evaluate(len(coco.getImgIds()))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0)
    assert results['coco/segm_mAP'] == pytest.approx(1.0)


@pytest.fixture(scope='module')
def panoptic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_panoptic')
    out = _run(root, '--only', 'coco', '--panoptic')
    assert 'panoptic: train' in out
    return root


def test_panoptic_flag_leaves_the_instance_set_unchanged(roots, panoptic_root):
    plain = roots[0] / 'coco'
    for f in _files(plain):
        assert (panoptic_root / 'coco' / f).read_bytes() == (plain / f).read_bytes(), f
    added = set(_files(panoptic_root / 'coco')) - set(_files(plain))
    assert {f.parts[1] for f in added} == {'panoptic_train2017.json', 'panoptic_val2017.json',
                                           'panoptic_train2017', 'panoptic_val2017'}
    assert not any('panoptic' in f.as_posix() for f in _files(plain))


def test_panoptic_pngs_are_the_visible_instance_masks_plus_background(panoptic_root):
    from pycocotools.coco import COCO

    tool = _load_tool()
    coco_dir = panoptic_root / 'coco'
    for split, num in [('train', 6), ('val', 3)]:
        instances = COCO(str(coco_dir / 'annotations' / f'instances_{split}2017.json'))
        pan = json.loads((coco_dir / 'annotations' / f'panoptic_{split}2017.json').read_text())
        cats = {c['id']: c for c in pan['categories']}
        assert [cats[i]['name'] for i in sorted(cats)] == \
            list(tool.TOY_COCO_CLASSES + tool.TOY_PANOPTIC_STUFF)
        assert [cats[i]['isthing'] for i in sorted(cats)] == [1] * 4 + [0]
        assert len(pan['annotations']) == num
        for entry in pan['annotations']:
            with Image.open(coco_dir / 'annotations' / f'panoptic_{split}2017' /
                            entry['file_name']) as im:
                assert im.mode == 'RGB' and im.size == (SIZE, SIZE)
                rgb = np.asarray(im).astype(np.int64)
            ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 ** 2 * rgb[..., 2]
            segments = {s['id']: s for s in entry['segments_info']}
            assert set(np.unique(ids)) == set(segments)  # every pixel in exactly one segment
            things = instances.loadAnns(instances.getAnnIds(imgIds=entry['image_id']))
            assert sorted(s['category_id'] for s in segments.values() if s['category_id'] < 5) \
                == sorted(a['category_id'] for a in things)
            covered = np.zeros((SIZE, SIZE), bool)
            for ann in things:  # stored masks are the visible parts: they never overlap
                mask = instances.annToMask(ann).astype(bool)
                assert not (covered & mask).any()
                covered |= mask
                match = [s for s in segments.values() if (ids == s['id']).sum() and
                         np.array_equal(ids == s['id'], mask)]
                assert len(match) == 1 and match[0]['category_id'] == ann['category_id']
            background = [s for s in segments.values() if s['category_id'] == 5]
            assert len(background) == 1
            assert np.array_equal(ids == background[0]['id'], ~covered)
            for s in segments.values():
                assert s['area'] == (ids == s['id']).sum() and s['iscrowd'] == 0
