"""Tiny datasets (a few 32-pixel images) in the layouts the toy configs read, for breaking on
purpose in the bad-input tests: a COCO-style set and an mmseg folder-layout set; and a bigger
COCO-style set of 8-pixel images (bigger than the startup decode sample) with a broken image
deep inside."""
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

TOY_CLASSES = ('rectangle', 'ellipse', 'triangle', 'star')


def write_image(path: Path, size=(32, 32), suffix_mode='RGB') -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)
    image = Image.fromarray(array) if suffix_mode == 'RGB' else \
        Image.fromarray(array[..., 0] % 4)
    image.save(path)
    return path


def coco_set(root: Path, num_images: int = 2, categories=TOY_CLASSES, side: int = 32) -> Path:
    """``root/annotations/instances_train2017.json`` + ``root/train2017/*.jpg``, one box an
    image (``side`` >= 8 pixels); returns root."""
    images, annotations = [], []
    for i in range(num_images):
        write_image(root / 'train2017' / f'{i:06d}.jpg', (side, side))
        images.append(dict(id=i, file_name=f'{i:06d}.jpg', width=side, height=side))
        annotations.append(dict(id=i, image_id=i, category_id=1, bbox=[1, 1, 6, 6], area=36,
                                iscrowd=0, segmentation=[[1, 1, 7, 1, 7, 7, 1, 7]]))
    ann = dict(images=images, annotations=annotations,
               categories=[dict(id=i + 1, name=n) for i, n in enumerate(categories)])
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    (root / 'annotations' / 'instances_train2017.json').write_text(json.dumps(ann, indent=1))
    return root


def seg_set(root: Path, num_images: int = 2, sizes=None) -> Path:
    """``root/images/{training,validation}/*.jpg`` + ``root/annotations/.../*.png``."""
    for split in ('training', 'validation'):
        for i in range(num_images):
            size = sizes[i % len(sizes)] if sizes else (32, 32)
            write_image(root / 'images' / split / f'{i:06d}.jpg', size)
            write_image(root / 'annotations' / split / f'{i:06d}.png', size, suffix_mode='L')
    return root


def break_image(path: Path, how: str) -> Path:
    """Make an image file unusable the way real files break: ``'empty'`` (0 bytes, an
    interrupted copy) or ``'garbage'`` (bytes that are no image)."""
    path.write_bytes(b'' if how == 'empty' else b'\x89PNG\r\n this is not an image' * 4)
    return path


def other_split(root) -> str:
    """The toy val annotations of ``root`` as another split of COCO holds its images: other ids
    (COCO's splits share none); the path of that file (a folder of its own)."""
    data = json.loads(Path(root, 'coco', 'annotations', 'instances_val2017.json').read_text())
    for entry in (*data['images'], *data['annotations']):
        key = 'id' if 'file_name' in entry else 'image_id'
        entry[key] += 1_000_000
    path = Path(tempfile.mkdtemp(prefix='other_split-')) / 'instances_other2017.json'
    path.write_text(json.dumps(data))
    return str(path)


TOY_CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'toy'
TOY_DET, TOY_SEG, TOY_DINO = (str(TOY_CONFIGS / f'{name}.py') for name in (
    'maskrcnn_convnext_toy_coco', 'upernet_convnext_toy_ade20k', 'dino_convnext_toy_coco'))


def toy_config(path, root, **options):
    """A toy config (``TOY_*``) on the generated toy data under ``root``, its val evaluator on
    the val annotations, ``options`` (``--cfg-options`` keys) applied, as our tools prepare it."""
    from convnext_backbone.cli import config
    coco, ade = f'{root}/coco/', f'{root}/ade/ADEChallengeData2016'
    data = ade if path == TOY_SEG else coco
    prepared = {f'{loader}.dataset.data_root': data for loader in
                ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    if path != TOY_SEG:
        prepared['val_evaluator.ann_file'] = f'{coco}annotations/instances_val2017.json'
    return config.load_config(path, {**prepared, **options})
