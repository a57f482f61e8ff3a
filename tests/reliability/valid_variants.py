"""Valid variants of configs and data sets, made by rule (the generative test of runs that must
start, test_valid_variants.py): the counterpart of mistakes.py.

A variant is a config (the whole config as the tools see it, ``_base_`` merged, as a dict), the
tool that starts it and whether the host runs it with its own model (else the cheapest one:
the data path is the same for every head). Variants are the product of rule values, each a
layout users have:

* where the files are (``STORAGES``): the local disk; a URL (``http.server``); an object store
  registered with mmengine's fileio, named by its URI scheme; the same store behind local-looking
  paths that a ``path_mapping`` maps (petrel's shape);
* how the paths are written (``ANN_RULES``): everything under ``data_root``; the annotation file
  on the disk with the images elsewhere (an absolute ``data_prefix``); ``data_root`` empty with
  absolute paths;
* file names (``NAMES``): plain, in subfolders, with spaces, with non-ASCII letters;
* dataset wrappers (``WRAPPERS``): none, ConcatDataset, RepeatDataset, ClassBalancedDataset,
  MultiImageMixDataset;
* classes (``METAINFO``): the file's, a subset, reordered (every head's num_classes follows);
* the tool: tools/train.py (train + val loaders) or tools/test.py (test loader);
* segmentation (``SEG_*``): the folder listed or a list file; label maps with another suffix;
  ``reduce_zero_label`` on and off;
* instance-only COCO (no panoptic folder) for every instance head's full-size config, and every
  toy config of every head with its own model.

The main rules of each family form a full product; the secondary ones (path writing, classes,
tool) cycle along it, so each of their values meets each value of the main rules.
"""
import copy
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
from host_storage import MAPPED_ROOT, SCHEME, mapped_args
from PIL import Image

TOY = ('rectangle', 'ellipse', 'triangle', 'star')
STORAGES = ('local', 'http', 'store', 'mapped')
ANN_RULES = ('under-root', 'ann-on-disk', 'no-root')
NAMES = {'plain': '{i:06d}.jpg', 'subfolders': 'part{p}/{i:06d}.jpg',
         'spaces': 'photo {i:06d}.jpg', 'non-ascii': 'fotó_ü_{i:06d}.jpg'}
WRAPPERS = ('none', 'concat', 'repeat', 'class-balanced', 'multi-image-mix')
METAINFO = {'all': TOY, 'subset': ('ellipse', 'rectangle'),
            'reordered': ('star', 'triangle', 'ellipse', 'rectangle')}
TOOLS = ('train', 'test')
SEG_LISTING = ('folder', 'list-file')
SEG_SUFFIX = ('.png', '_labelTrainIds.png')
SEG_REDUCE = (True, False)
BUCKET = 'bucket'
SIZES = dict(train=4, val=2)


@dataclass
class Variant:
    name: str
    cfg: dict
    tool: str  # 'train' or 'test'
    own_model: bool = False  # the host runs the config's model (else the cheapest one)
    remote: bool = False  # images are read from storage other than the local disk


# Data ------------------------------------------------------------------------------------------

def _image(path: Path, seed: int, size=32, gray=False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if gray:
        Image.fromarray(rng.integers(0, 6, (size, size), dtype=np.uint8)).save(path)
    else:
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def coco_sets(root: Path, categories=TOY, labelled=TOY, styles=tuple(NAMES)) -> Path:
    """``root/<names style>/{train2017,val2017}/...`` and ``annotations/instances_*.json``: 32-pixel
    images, one object of each ``labelled`` category an image (all ``categories`` listed)."""
    ids = {name: i + 1 for i, name in enumerate(categories)}
    for style in styles:
        pattern = NAMES[style]
        for split, count in SIZES.items():
            images, annotations = [], []
            for i in range(count):
                name = pattern.format(i=i, p=i % 2)
                _image(root / style / f'{split}2017' / name, i)
                images.append(dict(id=i + 1, file_name=name, width=32, height=32))
                for k, category in enumerate(labelled):
                    x, y = 2 + 7 * k, 3 + 5 * k
                    annotations.append(dict(
                        id=len(annotations) + 1, image_id=i + 1, category_id=ids[category],
                        bbox=[x, y, 6, 6], area=36, iscrowd=0,
                        segmentation=[[x, y, x + 6, y, x + 6, y + 6, x, y + 6]]))
            ann = dict(images=images, annotations=annotations,
                       categories=[dict(id=i, name=n) for n, i in ids.items()])
            path = root / style / 'annotations' / f'instances_{split}2017.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(ann, ensure_ascii=False), encoding='utf-8')
    return root


def seg_set(root: Path) -> Path:
    """mmseg's folder layout: ``images/{training,validation}/*.jpg`` and a label map of each
    suffix of SEG_SUFFIX under ``annotations/``; ``{training,validation}.txt`` list the names."""
    for split, count in (('training', SIZES['train']), ('validation', SIZES['val'])):
        names = [f'ADE_{split}_{i:04d}' for i in range(count)]
        for i, name in enumerate(names):
            _image(root / 'images' / split / f'{name}.jpg', i)
            for suffix in SEG_SUFFIX:
                _image(root / 'annotations' / split / f'{name}{suffix}', i, gray=True)
        (root / f'{split}.txt').write_text(''.join(f'{n}\n' for n in names))
    return root


# Where the files are ---------------------------------------------------------------------------

@dataclass
class World:
    data: Path  # the local folder every storage's files come from
    url: str  # the same folder served over HTTP

    def location(self, storage: str, folder: str) -> str:
        """The folder ``data/<folder>/`` as ``storage`` names it (with a trailing /)."""
        return {'local': f'{self.data}/{folder}/', 'http': f'{self.url}/{folder}/',
                'store': f'{SCHEME}://{BUCKET}/{folder}/',
                'mapped': f'{MAPPED_ROOT}{folder}/'}[storage]


def reader_args(storage: str):
    """The loading transforms' ``backend_args`` for ``storage``."""
    return {'http': dict(backend='http'), 'mapped': mapped_args(BUCKET)}.get(storage)


def _with_backend(pipeline: list, args) -> list:
    pipeline = copy.deepcopy(pipeline)
    for step in pipeline:
        if str(step.get('type', '')).endswith(('LoadImageFromFile', 'LoadAnnotations')):
            step['backend_args'] = copy.deepcopy(args)
    return pipeline


def place(dataset: dict, world: World, storage: str, ann_rule: str, folder: str,
          ann_file: str, prefixes: Dict[str, str]) -> dict:
    """``dataset`` with its files at ``folder`` of ``storage``, the paths written by
    ``ann_rule``; only the image prefix moves (other prefixes stay as the config has them)."""
    dataset = copy.deepcopy(dataset)
    here, there = world.location('local', folder), world.location(storage, folder)
    prefix = dict(dataset.get('data_prefix') or {})
    if ann_rule == 'under-root':
        dataset.update(data_root=there, ann_file=ann_file)
        prefix.update(prefixes)
        if storage == 'mapped':
            dataset['backend_args'] = mapped_args(BUCKET)
    else:
        dataset.update(data_root=here if ann_rule == 'ann-on-disk' else '',
                       ann_file=ann_file if ann_rule == 'ann-on-disk' else here + ann_file)
        prefix.update({key: there + value for key, value in prefixes.items()})
    dataset['data_prefix'] = prefix
    dataset['pipeline'] = _with_backend(dataset.get('pipeline') or [], reader_args(storage))
    return dataset


def wrap(wrapper: str, leaf, pipeline_after_load: list) -> dict:
    """The dataset of ``wrapper`` around ``leaf(split)`` (a function of the split)."""
    if wrapper == 'none':
        return leaf('train')
    if wrapper == 'concat':
        return dict(type='ConcatDataset', datasets=[leaf('train'), leaf('val')])
    if wrapper == 'repeat':
        return dict(type='RepeatDataset', times=2, dataset=leaf('train'))
    if wrapper == 'class-balanced':
        return dict(type='ClassBalancedDataset', oversample_thr=0.5, dataset=leaf('train'))
    inner = leaf('train')
    loads = [s for s in inner['pipeline'] if str(s['type']).endswith(('LoadImageFromFile',
                                                                      'LoadAnnotations'))]
    for step in loads:  # mmdet's mixing transforms move boxes, not masks
        if str(step['type']).endswith('LoadAnnotations'):
            step['with_mask'] = False
    inner['pipeline'] = loads
    return dict(type='MultiImageMixDataset', dataset=inner, pipeline=pipeline_after_load)


def set_num_classes(node, count: int):
    """Every ``num_classes`` of a model config set to ``count`` (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes' and isinstance(value, int):
                node[key] = count
            else:
                set_num_classes(value, count)
    elif isinstance(node, list):
        for item in node:
            set_num_classes(item, count)


def point_evaluators(cfg: dict, tool: str) -> dict:
    """Each evaluator that reads an annotation file (COCO's) reads the one of the dataset it
    scores, as a user's config must: mmengine's Runner builds the evaluator (which opens the
    file) before the first iteration, so a config whose evaluator names a file that is not
    there does not run (the host side here starts only the loaders and a step)."""
    loader, key = ('val_dataloader', 'val_evaluator') if tool == 'train' else \
        ('test_dataloader', 'test_evaluator')
    dataset = cfg[loader]['dataset']
    while 'dataset' in dataset or 'datasets' in dataset:  # wrappers: the first set inside
        dataset = dataset.get('dataset') or dataset['datasets'][0]
    ann, root = dataset.get('ann_file') or '', dataset.get('data_root') or ''
    path = root.rstrip('/') + '/' + ann if root and '://' in root else os.path.join(root, ann)
    evaluators = cfg.get(key)
    for metric in evaluators if isinstance(evaluators, list) else [evaluators]:
        if isinstance(metric, dict) and 'ann_file' in metric and ann:
            metric['ann_file'] = path
            if dataset.get('backend_args'):
                metric['backend_args'] = copy.deepcopy(dataset['backend_args'])
    return cfg


def _loaders(cfg: dict, tool: str, main: dict, val: dict) -> dict:
    """``cfg`` with the variant's dataset in the loader the tool reads (each section its own
    copy: a config's ``test_dataloader = val_dataloader`` is one object)."""
    cfg = {key: copy.deepcopy(value) for key, value in cfg.items()}
    if tool == 'train':
        cfg['train_dataloader']['dataset'] = main
        cfg['val_dataloader']['dataset'] = val
    else:
        cfg['test_dataloader']['dataset'] = main
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0, persistent_workers=False)
    return point_evaluators(cfg, tool)


# The families ----------------------------------------------------------------------------------

MOSAIC = [dict(type='Mosaic', img_scale=(64, 64), pad_val=114.0),
          dict(type='RandomAffine', scaling_ratio_range=(0.5, 1.5), border=(-32, -32)),
          dict(type='PackDetInputs')]


def detection(world: World, base: dict) -> List[Variant]:
    """The toy Mask R-CNN config's data (the cheapest model on the host side): STORAGES x NAMES x
    WRAPPERS, with ANN_RULES, METAINFO and TOOLS cycling."""
    variants = []
    product = itertools.product(STORAGES, NAMES, WRAPPERS)
    for i, (storage, names, wrapper) in enumerate(product):
        ann_rule = ANN_RULES[i % len(ANN_RULES)]
        meta = list(METAINFO)[(i // len(ANN_RULES)) % len(METAINFO)]
        tool = TOOLS[(i // 2) % len(TOOLS)]
        test = tool == 'test'

        def leaf(split, test_mode=test, storage=storage, names=names, ann_rule=ann_rule,
                 meta=meta):
            dataset = copy.deepcopy(base['train_dataloader']['dataset'])
            dataset.update(metainfo=dict(classes=METAINFO[meta]), test_mode=test_mode)
            if test_mode:
                dataset['pipeline'] = copy.deepcopy(base['test_dataloader']['dataset']['pipeline'])
            return place(dataset, world, storage, ann_rule, names,
                         f'annotations/instances_{split}2017.json', dict(img=f'{split}2017/'))
        cfg = _loaders(base, tool, wrap(wrapper, leaf, MOSAIC), leaf('val', test_mode=True))
        set_num_classes(cfg['model'], len(METAINFO[meta]))
        name = f'det/{storage}/{ann_rule}/{names}/{wrapper}/{meta}/{tool}'
        variants.append(Variant(name, cfg, tool, remote=storage != 'local'))
    return variants


def segmentation(world: World, base: dict) -> List[Variant]:
    """The toy UperNet config's data: STORAGES x SEG_LISTING x SEG_SUFFIX x SEG_REDUCE, TOOLS
    cycling. Over HTTP the paths are absolute URLs (HTTP has no join); a list file is on the disk
    (mmseg reads it only there)."""
    variants = []
    product = itertools.product(STORAGES, SEG_LISTING, SEG_SUFFIX, SEG_REDUCE)
    for i, (storage, listing, suffix, reduce) in enumerate(product):
        tool = TOOLS[i % len(TOOLS)]

        def leaf(split, test_mode, storage=storage, listing=listing, suffix=suffix,
                 reduce=reduce):
            key = 'train' if split == 'train' else 'val'
            dataset = copy.deepcopy(base[f'{key}_dataloader']['dataset'])
            folder = 'training' if split == 'train' else 'validation'
            dataset.update(seg_map_suffix=suffix, reduce_zero_label=reduce, test_mode=test_mode,
                           ann_file=str(world.data / 'seg' / f'{folder}.txt')
                           if listing == 'list-file' else '')
            for step in dataset['pipeline']:
                if str(step['type']).endswith('LoadAnnotations'):
                    step['reduce_zero_label'] = reduce
            prefixes = dict(img_path=f'images/{folder}', seg_map_path=f'annotations/{folder}')
            ann_file = dataset.pop('ann_file')
            placed = place(dataset, world, storage,
                           'no-root' if storage == 'http' else 'under-root', 'seg', '', prefixes)
            placed['ann_file'] = ann_file
            return placed
        cfg = _loaders(base, tool, leaf('train', tool == 'test'), leaf('val', True))
        name = f'seg/{storage}/{listing}/{suffix}/reduce_zero_label={reduce}/{tool}'
        variants.append(Variant(name, cfg, tool, remote=storage != 'local'))
    return variants


def instance_heads(world: World, bases: Dict[str, dict], storages=('local', 'http')) -> list:
    """Each full-size instance config (inheriting mmdet's data settings, the panoptic prefix
    too) on instance-only COCO with COCO's categories."""
    variants = []
    for (name, base), storage in itertools.product(sorted(bases.items()), storages):
        def leaf(split, dataset, storage=storage):
            return place(dataset, world, storage,
                         'under-root' if storage == 'local' else 'ann-on-disk', 'coco80/plain',
                         f'annotations/instances_{split}2017.json', dict(img=f'{split}2017/'))
        cfg = copy.deepcopy(base)
        cfg['train_dataloader']['dataset'] = leaf('train', cfg['train_dataloader']['dataset'])
        cfg['val_dataloader']['dataset'] = leaf('val', cfg['val_dataloader']['dataset'])
        cfg = _loaders(cfg, 'train', cfg['train_dataloader']['dataset'],
                       cfg['val_dataloader']['dataset'])
        variants.append(Variant(f'instance-only/{name}/{storage}', cfg, 'train',
                                remote=storage != 'local'))
    return variants


def toys(bases: Dict[str, dict], coco: Path, ade: Path) -> List[Variant]:
    """Every toy config with its own model on the generated toy sets (instance-only COCO)."""
    variants = []
    for name, base in sorted(bases.items()):
        cfg = copy.deepcopy(base)
        root = f'{ade}' if 'ade20k' in name else f'{coco}/'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader]['dataset']['data_root'] = root
            cfg[loader].update(batch_size=2, num_workers=0, persistent_workers=False)
        variants.append(Variant(f'toy/{name}', point_evaluators(cfg, 'train'), 'train',
                                own_model=True))
    return variants
