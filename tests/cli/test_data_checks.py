"""cli.data_checks: the toy sets pass; what is decoded and what is only looked for; the tools run
the checks before building a model, and print one error line. (The error messages of each kind
are rows of tests/reliability/test_bad_input.py.)"""
import pytest

from convnext_backbone.cli import config, data_checks
from convnext_backbone.cli.data_checks import DataError

from conftest import REPO, run_tool

TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')
TOY_SEG = str(REPO / 'configs' / 'toy' / 'upernet_convnext_toy_ade20k.py')


def toy_options(toy_root):
    coco, ade = f'{toy_root}/coco/', f'{toy_root}/ade/ADEChallengeData2016'
    return ({'train_dataloader.dataset.data_root': coco, 'val_dataloader.dataset.data_root': coco},
            {'train_dataloader.dataset.data_root': ade, 'val_dataloader.dataset.data_root': ade})


@pytest.mark.slow  # generates the full-size toy sets (about 5 s)
def test_the_generated_toy_sets_pass(toy_root):
    det, seg = toy_options(toy_root)
    data_checks.check_data(config.load_config(TOY_DET, det), ['train_dataloader', 'val_dataloader'])
    data_checks.check_data(config.load_config(TOY_SEG, seg), ['train_dataloader', 'val_dataloader'])


def test_every_image_is_looked_for_and_a_spread_sample_decoded(tmp_path, monkeypatch):
    from PIL import Image
    paths = []
    for i in range(5):
        path = tmp_path / f'{i}.jpg'
        Image.new('RGB', (8, 8)).save(path)
        paths.append(str(path))
    monkeypatch.setattr(data_checks, 'DECODE_LIMIT', 3)  # decodes positions 0, 2 and 4
    (tmp_path / '1.jpg').write_bytes(b'not an image')
    data_checks.check_images(paths, 'ann.json')  # position 1 is not in the sample
    (tmp_path / '2.jpg').write_bytes(b'not an image')
    with pytest.raises(DataError, match='2.jpg does not decode as an image'):
        data_checks.check_images(paths, 'ann.json')
    (tmp_path / '3.jpg').write_bytes(b'')
    with pytest.raises(DataError, match=r'ann.json: 1 listed image\(s\) are empty files \(0 '
                       r'bytes\): .*3.jpg'):
        data_checks.check_images(paths, 'ann.json')
    (tmp_path / '0.jpg').unlink()
    with pytest.raises(DataError, match=r'1 listed image\(s\) are missing'):
        data_checks.check_images(paths, 'ann.json')


def coco_without_metainfo(tmp_path, categories):
    import json

    from PIL import Image
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    (root / 'train2017').mkdir()
    Image.new('RGB', (32, 32)).save(root / 'train2017' / 'a.jpg')
    (root / 'annotations' / 'instances_train2017.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.jpg', width=32, height=32)], annotations=[],
        categories=[dict(id=i, name=name) for i, name in enumerate(categories)])))
    cfg = config.load_config(TOY_DET, {'train_dataloader.dataset.data_root': f'{root}/'})
    del cfg.train_dataloader.dataset['metainfo']
    return cfg


def test_a_custom_set_without_metainfo_gets_the_dataset_class_classes(tmp_path):
    """mmdet's CocoDataset falls back to its own 80 classes: the custom categories would silently
    get no objects."""
    cfg = coco_without_metainfo(tmp_path, ['apple', 'pear'])
    with pytest.raises(DataError, match=r'80 classes of CocoDataset \(its own: the config gives no '
                       r'metainfo.classes\).*Give the dataset metainfo=dict\(classes='):
        data_checks.check_data(cfg, ['train_dataloader'])


def test_the_dataset_class_classes_count_against_the_heads(tmp_path):
    from mmdet.datasets import CocoDataset
    cfg = coco_without_metainfo(tmp_path, CocoDataset.METAINFO['classes'])
    with pytest.raises(DataError, match='num_classes = 4, but the train_dataloader dataset has '
                       '80 classes'):
        data_checks.check_data(cfg, ['train_dataloader'])


@pytest.mark.slow
def test_tools_report_bad_data_as_one_line_before_building_the_model(tmp_path, toy_root):
    import shutil
    coco = tmp_path / 'coco'
    shutil.copytree(toy_root / 'coco', coco)
    broken = sorted((coco / 'val2017').iterdir())[0]
    broken.write_bytes(b'\x89PNG garbage')
    checkpoint = tmp_path / 'any.pth'
    import torch
    torch.save({'state_dict': {}}, checkpoint)
    proc = run_tool(REPO / 'tools' / 'test.py', TOY_DET, checkpoint, '--work-dir', tmp_path / 'w',
                    '--cfg-options', f'test_dataloader.dataset.data_root={coco}/', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f'error: {broken} does not decode as an image (UnidentifiedImageError: ' \
        f"cannot identify image file '{broken}'). Replace the file (re-download or re-export " \
        'it), or remove it from the dataset.'
    assert 'Traceback' not in proc.stderr
