"""Generate small, deterministic toy datasets in the real COCO 2017 and ADE20K layouts.

Why: the README's first command, the toy configs and the end-to-end tests must show the whole job
(train, evaluate, draw predictions) on a fresh machine with no dataset and no download. The data
goes through the unmodified dataset classes and pipelines of mmdet (``CocoDataset``) and mmseg
(``BaseSegDataset`` / ``ADE20KDataset`` layout), so it exercises exactly what the real data does.

* ``ROOT/coco``: instance segmentation, classes ``TOY_COCO_CLASSES``. Each image holds 1-4 shapes
  (rotated rectangles, ellipses, triangles, stars) in class-typical, jittered colours on a textured,
  noisy background; later shapes may occlude earlier ones. Every shape is a polygon rasterised by
  pycocotools, so image, mask and polygon agree to the pixel. Unoccluded shapes are stored as
  polygons, occluded ones (their visible part) and every 6th annotation as compressed RLE
  (``counts`` a str, ``iscrowd`` 0; mmdet 3.3's ``LoadAnnotations`` decodes it with the default
  ``poly2mask=True``, while ``poly2mask=False`` pipelines mark such instances ignored).
  ``bbox`` (xywh) and ``area`` come from the stored mask.
* with ``--panoptic``, also ``ROOT/coco/annotations/panoptic_{train,val}2017.json`` and the PNGs
  in ``panoptic_{train,val}2017/`` (COCO panoptic format: a segment's id is R + 256 G + 256^2 B),
  derived from the instance annotations: each shape's visible part is a "thing" segment of its
  class (ids 1-4), everything else one "stuff" segment, ``TOY_PANOPTIC_STUFF`` (id 5). The
  instance set is the same with or without the flag.
* ``ROOT/ade/ADEChallengeData2016``: semantic segmentation, classes ``TOY_ADE_CLASSES`` stored as
  1..K in single-channel uint8 PNGs and 0 = "other"/unlabelled (ignored with
  ``reduce_zero_label=True``, as in ADE20K). A scene is sky over ground (stuff) with 1-4 shapes
  (things); 0 marks the thin band at the horizon and an occasional grey clutter blob.

Output is byte-identical for the same parameters (one RNG stream per dataset, split and image).
A manifest (``.toy_manifest.json``) makes a re-run with the same parameters a no-op.

    python tools/make_toy_data.py [--root data/toy] [--size 128] [--num-train 200] [--num-val 40]
                                  [--seed 0] [--only coco|ade] [--panoptic]
"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

TOY_COCO_CLASSES = ('rectangle', 'ellipse', 'triangle', 'star')
TOY_ADE_CLASSES = ('sky', 'ground', 'rectangle', 'ellipse', 'triangle')
TOY_PANOPTIC_STUFF = ('background',)
FORMAT_VERSION = 1
MANIFEST = '.toy_manifest.json'
SHAPE_COLOURS = {'rectangle': (200, 60, 50), 'ellipse': (60, 170, 70), 'triangle': (60, 90, 200),
                 'star': (220, 190, 40)}


def _shape_polygon(rng, shape, size):
    """A random closed polygon [x0, y0, x1, y1, ...] of ``shape`` lying fully inside the image."""
    r = rng.uniform(0.12, 0.3) * size
    cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
    rot = rng.uniform(0, 2 * np.pi)
    if shape == 'rectangle':
        half_w, half_h = r, r * rng.uniform(0.45, 1.0)
        rot = rng.uniform(-0.35, 0.35)  # roughly axis-aligned, so it never looks like a diamond
        pts = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
        pts = pts * r / np.hypot(half_w, half_h)  # keep the corners within radius r
    elif shape == 'ellipse':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t) * r, np.sin(t) * r * rng.uniform(0.5, 1.0)], 1)
    elif shape == 'triangle':
        t = rot + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
        pts, rot = np.stack([np.cos(t) * r, np.sin(t) * r], 1), 0.0
    elif shape == 'star':
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([np.cos(t) * rad, np.sin(t) * rad], 1)
    else:
        raise ValueError(f'unknown shape {shape!r}')
    c, s = np.cos(rot), np.sin(rot)
    pts = pts @ np.array([[c, s], [-s, c]]) + [cx, cy]
    return [round(float(v), 2) for v in np.clip(pts, 0, size - 1).ravel()]


def _rasterise(poly, size):
    """The pycocotools rasterisation of one polygon (what COCO tools see), as an HxW bool array."""
    rle = mask_utils.merge(mask_utils.frPyObjects([poly], size, size))
    return mask_utils.decode(rle).astype(bool)


def _background(rng, size, base=None, smooth=6):
    """Smooth colour texture (upsampled coarse noise) around ``base`` + fine noise; float HxWx3."""
    base = rng.uniform(80, 170, 3) if base is None else np.asarray(base, float)
    coarse = (base + rng.normal(0, 30, (smooth, smooth, 3))).clip(0, 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), float)
    return img + rng.normal(0, 6, img.shape)


def _paint(img, mask, rng, colour):
    """Fill ``mask`` with a jittered colour, a linear shading and per-pixel noise (in place)."""
    colour = np.asarray(colour, float) + rng.uniform(-35, 35, 3)
    ys, xs = np.nonzero(mask)
    shade = (xs - xs.mean()) * rng.uniform(-0.6, 0.6) + (ys - ys.mean()) * rng.uniform(-0.6, 0.6)
    img[ys, xs] = colour + shade[:, None] + rng.normal(0, 8, (len(ys), 3))


def _save_jpg(img, path):
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=95)


def _visible(full):
    """Visible part of each mask when later masks are drawn on top of earlier ones."""
    visible, above = [None] * len(full), np.zeros_like(full[0])
    for i in range(len(full) - 1, -1, -1):
        visible[i], above = full[i] & ~above, above | full[i]
    return visible


def _layout(rng, classes, size, tries=50):
    """1-4 shapes [(label, polygon, full mask, visible mask)] in drawing order (later on top).
    In ~40 % of the images shapes may overlap, each keeping >= 40 % (>= 16 px) of its area
    visible; elsewhere they are disjoint. A shape that finds no place in ``tries`` is dropped."""
    allow_overlap, objects = rng.random() < 0.4, []
    for label in rng.integers(0, len(classes), rng.integers(1, 5)).tolist():
        for _ in range(tries):
            poly = _shape_polygon(rng, classes[label], size)
            full = [f for _, _, f in objects] + [_rasterise(poly, size)]
            if not allow_overlap and np.sum(full, 0).max() > 1:
                continue
            if all(v.sum() >= max(16, 0.4 * f.sum()) for v, f in zip(_visible(full), full)):
                objects.append((label, poly, full[-1]))
                break
    if not objects:
        raise RuntimeError(f'could not place a shape on a {size}x{size} image; use a larger --size')
    return [o + (v,) for o, v in zip(objects, _visible([f for _, _, f in objects]))]


def _rng(seed, dataset, split, index):
    """One stream per (seed, dataset, split, image): image i does not depend on the counts."""
    return np.random.default_rng([seed, dataset, split, index])


def _coco_split(out, split, num, size, seed, split_id):
    """Write ``out/{split}2017/*.jpg`` and return the COCO json dict of the split."""
    img_dir = out / f'{split}2017'
    img_dir.mkdir(parents=True)
    images, anns = [], []
    for i in range(num):
        rng = _rng(seed, 0, split_id, i)
        img = _background(rng, size)
        objects = _layout(rng, TOY_COCO_CLASSES, size)
        for label, _, full, _ in objects:
            _paint(img, full, rng, SHAPE_COLOURS[TOY_COCO_CLASSES[label]])
        img_id, file_name = i + 1, f'{i + 1:012d}.jpg'
        _save_jpg(img + rng.normal(0, 4, img.shape), img_dir / file_name)
        images.append(dict(id=img_id, file_name=file_name, height=size, width=size))
        for label, poly, full, vis in objects:
            ann_id = len(anns) + 1
            rle = mask_utils.encode(np.asfortranarray(vis.astype(np.uint8)))
            if (vis != full).any() or ann_id % 6 == 0:
                segm = dict(size=[size, size], counts=rle['counts'].decode('ascii'))
            else:
                segm = [poly]
            anns.append(dict(id=ann_id, image_id=img_id, category_id=label + 1, segmentation=segm,
                             area=int(mask_utils.area(rle)), iscrowd=0,
                             bbox=[float(v) for v in mask_utils.toBbox(rle)]))
    cats = [dict(id=k + 1, name=n, supercategory='shape') for k, n in enumerate(TOY_COCO_CLASSES)]
    info = dict(description='convnext_backbone toy shapes (generated)', version=str(FORMAT_VERSION))
    return dict(info=info, licenses=[], images=images, annotations=anns, categories=cats)


def _annotation_mask(ann, height, width):
    """The stored mask of one COCO annotation (polygons or RLE) as an HxW bool array."""
    segm = ann['segmentation']
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    else:
        rle = dict(segm, counts=segm['counts'].encode('ascii'))
    return mask_utils.decode(rle).astype(bool)


def _panoptic_split(out, split):
    """Write ``out/annotations/panoptic_{split}2017/*.png`` from the split's instance json and
    return the panoptic json dict (segment 1 of every image is the stuff "background")."""
    coco = json.loads((out / 'annotations' / f'instances_{split}2017.json').read_text())
    png_dir = out / 'annotations' / f'panoptic_{split}2017'
    png_dir.mkdir(exist_ok=True)
    stuff_id = len(TOY_COCO_CLASSES) + 1
    by_image = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)
    annotations = []
    for img in coco['images']:
        h, w = img['height'], img['width']
        ids = np.ones((h, w), np.int64)  # 1 = background; objects 2.. in drawing order
        cats = {1: stuff_id}
        for k, ann in enumerate(by_image[img['id']], start=2):
            ids[_annotation_mask(ann, h, w)] = k
            cats[k] = ann['category_id']
        segments = []
        for k in sorted(cats):
            mask = ids == k
            if not mask.any():
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            segments.append(dict(id=k, category_id=cats[k], iscrowd=0,
                                 area=int(mask.sum()),
                                 bbox=[float(v) for v in mask_utils.toBbox(rle)]))
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        file_name = img['file_name'].rsplit('.', 1)[0] + '.png'
        Image.fromarray(rgb).save(png_dir / file_name)
        annotations.append(dict(image_id=img['id'], file_name=file_name,
                                segments_info=segments))
    cats = [dict(c, isthing=1) for c in coco['categories']]
    cats += [dict(id=stuff_id + i, name=n, supercategory='stuff', isthing=0)
             for i, n in enumerate(TOY_PANOPTIC_STUFF)]
    return dict(info=coco['info'], licenses=[], images=coco['images'], annotations=annotations,
                categories=cats)


def make_toy_coco_panoptic(root, refresh=True):
    """Add COCO-panoptic annotations to the toy COCO set in ``root/coco`` (made first). With
    ``refresh=False`` a complete earlier result (the val json is written last) is kept."""
    ann_dir = Path(root) / 'coco' / 'annotations'
    meta = dict(root=str(ann_dir.parent),
                skipped=not refresh and (ann_dir / 'panoptic_val2017.json').is_file())
    for split in ('train', 'val'):
        path = ann_dir / f'panoptic_{split}2017.json'
        if not meta['skipped']:
            path.write_text(json.dumps(_panoptic_split(ann_dir.parent, split),
                                       separators=(',', ':')))
        pan = json.loads(path.read_text())
        meta[f'{split}_segments'] = sum(len(a['segments_info']) for a in pan['annotations'])
    return meta


def _ade_sample(rng, size):
    """One ADE-style scene: (image float HxWx3, label uint8 HxW with 0 = other, 1..K classes)."""
    sky, ground = _background(rng, size, (110, 160, 220), 4), _background(rng, size, (120, 95, 60))
    ys, xs = np.mgrid[0:size, 0:size]
    horizon = size * rng.uniform(0.3, 0.6) + size * 0.06 * np.sin(xs / size * rng.uniform(2, 9)
                                                                  + rng.uniform(0, 2 * np.pi))
    img = np.where((ys < horizon)[..., None], sky, ground)
    label = np.where(ys < horizon, 1, 2).astype(np.uint8)
    label[np.abs(ys - horizon) < 1.0] = 0  # unlabelled boundary band, as ADE20K has
    if rng.random() < 0.3:  # an unlabelled "other" object
        clutter = _rasterise(_shape_polygon(rng, 'ellipse', size), size)
        _paint(img, clutter, rng, (128, 128, 128))
        label[clutter] = 0
    for k, _, full, _ in _layout(rng, TOY_ADE_CLASSES[2:], size):
        name = TOY_ADE_CLASSES[2 + k]
        _paint(img, full, rng, SHAPE_COLOURS[name])
        label[full] = 3 + k
    return img + rng.normal(0, 4, img.shape), label


def _prepare(out, params):
    """True if ``out`` already holds this exact, complete toy set. Otherwise clears it to
    regenerate, refusing to touch a non-empty directory that is not a toy set (e.g. real data)."""
    manifest = out / MANIFEST
    if manifest.is_file():
        complete = len(list(out.rglob('*.jpg'))) == params['num_train'] + params['num_val']
        if json.loads(manifest.read_text()) == params and complete:
            return True
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        raise SystemExit(f'{out} exists and is not a generated toy set (no {MANIFEST}); '
                         'refusing to overwrite it. Choose another --root.')
    out.mkdir(parents=True, exist_ok=True)
    return False


def _params(kind, size, num_train, num_val, seed, classes):
    return dict(kind=kind, format_version=FORMAT_VERSION, size=size, num_train=num_train,
                num_val=num_val, seed=seed, classes=list(classes))


def make_toy_coco(root, size=128, num_train=200, num_val=40, seed=0):
    """Write the toy COCO set to ``root/coco``; returns its meta (``skipped`` if already there)."""
    out = Path(root) / 'coco'
    params = _params('coco', size, num_train, num_val, seed, TOY_COCO_CLASSES)
    meta = dict(params, root=str(out), skipped=_prepare(out, params))
    if not meta['skipped']:
        (out / 'annotations').mkdir()
        for split_id, (split, num) in enumerate([('train', num_train), ('val', num_val)]):
            coco = _coco_split(out, split, num, size, seed, split_id)
            (out / 'annotations' / f'instances_{split}2017.json').write_text(
                json.dumps(coco, separators=(',', ':')))
        (out / MANIFEST).write_text(json.dumps(params, indent=1))  # last: marks completion
    for split in ('train', 'val'):
        coco = json.loads((out / 'annotations' / f'instances_{split}2017.json').read_text())
        meta[f'{split}_annotations'] = len(coco['annotations'])
        meta[f'{split}_rle'] = sum(isinstance(a['segmentation'], dict) for a in coco['annotations'])
    return meta


def make_toy_ade(root, size=128, num_train=200, num_val=40, seed=0):
    """Write the toy ADE20K set to ``root/ade/ADEChallengeData2016``; returns its meta."""
    out = Path(root) / 'ade' / 'ADEChallengeData2016'
    params = _params('ade', size, num_train, num_val, seed, TOY_ADE_CLASSES)
    meta = dict(params, root=str(out), skipped=_prepare(out, params))
    if meta['skipped']:
        return meta
    for split_id, (split, num, prefix) in enumerate([('training', num_train, 'ADE_train'),
                                                      ('validation', num_val, 'ADE_val')]):
        (out / 'images' / split).mkdir(parents=True)
        (out / 'annotations' / split).mkdir(parents=True)
        for i in range(num):
            img, label = _ade_sample(_rng(seed, 1, split_id, i), size)
            _save_jpg(img, out / 'images' / split / f'{prefix}_{i + 1:08d}.jpg')
            Image.fromarray(label).save(out / 'annotations' / split
                                                  / f'{prefix}_{i + 1:08d}.png')
    (out / MANIFEST).write_text(json.dumps(params, indent=1))
    return meta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='data/toy', help='output root (default: data/toy)')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--only', choices=['coco', 'ade'], help='generate only one of the sets')
    parser.add_argument('--panoptic', action='store_true',
                        help='also write COCO-panoptic annotations for the toy COCO set')
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error('--size must be at least 32')
    if args.panoptic and args.only == 'ade':
        parser.error('--panoptic annotates the toy COCO set: drop --only ade')
    kwargs = dict(size=args.size, num_train=args.num_train, num_val=args.num_val, seed=args.seed)
    for kind, make, classes in [('coco', make_toy_coco, TOY_COCO_CLASSES),
                                ('ade', make_toy_ade, TOY_ADE_CLASSES)]:
        if args.only not in (None, kind):
            continue
        meta = make(args.root, **kwargs)
        state = 'up to date, nothing to do' if meta['skipped'] else 'generated'
        print(f"toy {kind}: {meta['root']} {state}: {args.num_train} train / {args.num_val} val "
              f"images of {args.size}x{args.size}, classes {', '.join(classes)}")
        if kind == 'coco':
            print(f"  annotations: train {meta['train_annotations']} ({meta['train_rle']} RLE), "
                  f"val {meta['val_annotations']} ({meta['val_rle']} RLE), the rest polygons")
            if args.panoptic:
                pan = make_toy_coco_panoptic(args.root, refresh=not meta['skipped'])
                print(f"  panoptic: train {pan['train_segments']} / val {pan['val_segments']} "
                      f"segments, things {', '.join(TOY_COCO_CLASSES)}, stuff "
                      f"{', '.join(TOY_PANOPTIC_STUFF)}")


if __name__ == '__main__':
    main()
