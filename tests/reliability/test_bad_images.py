"""Broken images in a set bigger than the startup decode sample (240 images, the broken one deep
inside): an empty file stops the tool at startup (a stat per image); a corrupt one the sample
misses stops training when it is loaded, in one line naming the file (also from a data loader
worker), or is skipped with a warning when the pipeline says so. What mmdet drops from the
annotations is said once, at startup."""
import json
import logging

import pytest
from bad_data import break_image, coco_set

from convnext_backbone.cli import data_checks
from convnext_backbone.data import CheckedLoadImageFromFile, ImageDecodeError
from convnext_backbone.data.image_files import sample_positions

from conftest import REPO, run_tool

TOY_DET = REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py'
TRAIN = REPO / 'tools' / 'train.py'
NUM_IMAGES = 240


def deep_unsampled_position(count=NUM_IMAGES):
    """The last position near 230 that the startup sample does not decode."""
    sampled = set(sample_positions(count, data_checks.DECODE_LIMIT))
    return next(p for p in range(230, 0, -1) if p not in sampled)


def big_set(tmp_path):
    return coco_set(tmp_path / 'coco', num_images=NUM_IMAGES, side=8)


def train(tmp_path, root, *options):
    """tools/train.py on the toy config over ``root``, all 240 images in the first batch (a
    broken one is met before any model computation), no validation."""
    return run_tool(TRAIN, TOY_DET, '--work-dir', tmp_path / 'work', '--cfg-options',
                    f'train_dataloader.dataset.data_root={root}/',
                    f'train_dataloader.batch_size={NUM_IMAGES}', 'val_cfg=None',
                    'val_dataloader=None', 'val_evaluator=None', *options, check=False)


def test_the_sample_misses_the_chosen_position():
    position = deep_unsampled_position()
    assert 200 < position <= 230
    assert sample_positions(NUM_IMAGES, 200)[0] == 0 and \
        sample_positions(NUM_IMAGES, 200)[-1] == NUM_IMAGES - 1
    assert sample_positions(10, 200) == list(range(10))


@pytest.mark.slow
def test_an_empty_image_deep_inside_stops_the_tool_at_startup(tmp_path):
    root = big_set(tmp_path)
    empty = break_image(root / 'train2017' / '000230.jpg', 'empty')
    proc = train(tmp_path, root)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    ann = root / 'annotations' / 'instances_train2017.json'
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {ann}: 1 listed image(s) are empty files (0 bytes): {empty}. Copy them again '
        '(an interrupted download or copy leaves empty files), or remove them from the '
        'dataset.')
    assert not list((tmp_path / 'work').glob('*/*.log'))  # refused before the Runner started


@pytest.mark.slow
def test_a_corrupt_image_the_sample_misses_stops_training_naming_it(tmp_path):
    """Also: the annotations mmdet drops are said in one warning line at startup."""
    root = big_set(tmp_path)
    ann = root / 'annotations' / 'instances_train2017.json'
    data = json.loads(ann.read_text())
    data['annotations'][7]['category_id'] = 99  # no such category
    data['annotations'][12]['bbox'][2] = 0  # zero wide
    ann.write_text(json.dumps(data))
    corrupt = break_image(root / 'train2017' / f'{deep_unsampled_position():06d}.jpg',
                          'garbage')
    proc = train(tmp_path, root)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {corrupt} does not decode as an image (UnidentifiedImageError: cannot '
        f"identify image file '{corrupt}'). Replace the file (re-download or re-export it) or "
        'remove it from the dataset; or let training skip such images: '
        "on_error='skip' in the pipeline's CheckedLoadImageFromFile.")
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines()
                if 'annotations are left out' in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].endswith(
        f'train_dataloader: {ann}: 2 of 240 annotations are left out: 1 with no box area '
        'inside its image (outside it, or zero wide or high) (first: annotation 12 of '
        '000012.jpg, bbox [1, 1, 0, 6] in 8x8); 1 with a category id the file does not list '
        '(first: annotation 7 of 000007.jpg, category_id 99); 1 of 240 images are left out '
        'of training by filter_cfg (no annotation of the classes, or smaller than min_size), '
        'e.g. 000007.jpg. Fix or remove those entries if they should be trained.')


def toy_train_dataset(root, on_error):
    """The toy config's own training dataset and pipeline over ``root``, built by mmdet."""
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(TOY_DET)
    init_default_scope('mmdet')
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = f'{root}/'
    dataset.pipeline[0]['on_error'] = on_error
    return DATASETS.build(dataset)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_skip_leaves_the_image_out_with_a_warning_line(tmp_path):
    from mmengine.logging import MMLogger
    root = coco_set(tmp_path / 'coco', num_images=6, side=8)
    corrupt = break_image(root / 'train2017' / '000004.jpg', 'garbage')
    dataset = toy_train_dataset(root, 'skip')
    position = [dataset.get_data_info(i)['img_path']
                for i in range(len(dataset))].index(str(corrupt))
    logger, collect = MMLogger.get_current_instance(), Collect()
    logger.addHandler(collect)
    try:
        item = dataset[position]
    finally:
        logger.removeHandler(collect)
    assert item['data_samples'].img_path != str(corrupt)  # another image in its place
    # one line per skip (mmengine draws the replacement at random: it may draw the same
    # broken image again, which is skipped again)
    skipped = [r for r in collect.records if 'skipped' in r.getMessage()]
    assert skipped and all(r.levelno == logging.WARNING for r in skipped)
    assert {r.getMessage() for r in skipped} == {
        f'skipped {corrupt}: the image does not decode (UnidentifiedImageError: cannot identify '
        f"image file '{corrupt}'); another image of the dataset takes its place."}


def test_stop_names_the_file_from_a_data_loader_worker(tmp_path):
    """torch re-raises a worker's error in the main process with the worker's traceback as its
    text; the error's line is still only our message."""
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    root = coco_set(tmp_path / 'coco', num_images=3, side=8)
    empty = break_image(root / 'train2017' / '000002.jpg', 'empty')
    dataset = toy_train_dataset(root, 'stop')
    loader = DataLoader(dataset, batch_size=3, num_workers=1, collate_fn=pseudo_collate)
    with pytest.raises(ImageDecodeError) as error:
        next(iter(loader))
    assert 'Traceback' in error.value.args[0]  # what torch hands over ...
    assert str(error.value) == (  # ... and what the tool prints
        f'{empty} does not decode as an image (the file is empty (0 bytes)). Replace the file '
        '(re-download or re-export it) or remove it from the dataset; or let training skip '
        "such images: on_error='skip' in the pipeline's CheckedLoadImageFromFile.")


def test_the_loader_is_the_hosts_with_one_option(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    image = coco_set(tmp_path / 'coco', num_images=1, side=8) / 'train2017' / '000000.jpg'
    ours = CheckedLoadImageFromFile(to_float32=True)({'img_path': str(image)})
    host = LoadImageFromFile(to_float32=True)({'img_path': str(image)})
    assert (ours['img'] == host['img']).all() and ours['img'].dtype == host['img'].dtype
    with pytest.raises(ImageDecodeError, match="on_error='ignore'; write one of 'stop', 'skip'"):
        CheckedLoadImageFromFile(on_error='ignore')


def test_a_test_pipeline_cannot_skip(tmp_path):
    root = coco_set(tmp_path / 'coco', num_images=2)
    dataset = dict(type='CocoDataset', data_root=f'{root}/', test_mode=True,
                   ann_file='annotations/instances_train2017.json',
                   pipeline=[dict(type='convnext_backbone.CheckedLoadImageFromFile',
                                  on_error='skip')])
    with pytest.raises(data_checks.DataError, match="val_dataloader: on_error='skip' in a "
                       'validation/test pipeline'):
        data_checks.check_pipeline(dataset, 'val_dataloader')
