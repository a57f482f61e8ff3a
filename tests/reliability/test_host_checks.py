"""The startup checks ask the host (data.host_paths, data.remote): only the folders the pipeline
reads, files read through the storage backend the run uses, a spread sample of remote files said
in the startup line, the download advice only for data missing on the local disk. (The
generated set of valid runs, test_valid_variants.py, compares all of it with mmengine's Runner.)"""
import shutil

import pytest
from bad_data import coco_set
from host_storage import MAPPED_ROOT, mapped_args, register_store, served

from convnext_backbone.cli import DataError, DatasetNotFoundError, config, data_checks
from convnext_backbone.cli.startup import check_inputs
from convnext_backbone.data import host_paths, remote

from conftest import REPO

TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')
TOY_M2F = str(REPO / 'configs' / 'toy' / 'mask2former_convnext_toy_coco.py')
LOADERS = ['train_dataloader']


@pytest.fixture
def notes(monkeypatch):
    said = []
    monkeypatch.setattr(data_checks, '_note', lambda loader, text: said.append(text))
    return said


def det(root='', **options):
    return config.load_config(TOY_DET, {'train_dataloader.dataset.data_root': root, **options})


def test_instance_only_coco_needs_no_panoptic_folder(toy_root):
    """mmdet's instance configs inherit data_prefix.seg (panoptic PNGs); LoadAnnotations without
    with_seg never reads it."""
    coco = f'{toy_root}/coco/'
    cfg = config.load_config(TOY_M2F, {'train_dataloader.dataset.data_root': coco})
    assert cfg.train_dataloader.dataset.data_prefix.seg == 'annotations/panoptic_train2017/'
    assert not (toy_root / 'coco' / 'annotations' / 'panoptic_train2017').exists()
    check_inputs(cfg, LOADERS)
    dataset = host_paths.build(cfg.train_dataloader.dataset, 'mmdet', 'train_dataloader')
    assert [read.key for read in host_paths.reads(dataset)[0]] == ['img_path']


def test_a_folder_the_pipeline_reads_is_looked_for(toy_root):
    cfg = det(f'{toy_root}/coco/', **{
        'train_dataloader.dataset.data_prefix.seg': 'annotations/panoptic_train2017/',
        'train_dataloader.dataset.pipeline.1.with_seg': True})
    with pytest.raises(DatasetNotFoundError, match=r'missing .*/coco/annotations/panoptic_train'
                       r'2017/\. .*cocodataset\.org.*make demo'):
        check_inputs(cfg, LOADERS)


def test_a_missing_local_image_folder_says_how_to_get_the_data(toy_root, tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(toy_root / 'coco', root)
    shutil.rmtree(root / 'train2017')
    with pytest.raises(DatasetNotFoundError, match=r'COCO 2017 not found: missing .*/coco/'
                       r'train2017/\. .*Download train2017.zip'):
        check_inputs(det(f'{root}/'), LOADERS)


def http_config(root, url, **options):
    return det(f'{root}/', **{'train_dataloader.dataset.data_prefix.img': f'{url}/train2017/',
                              'train_dataloader.dataset.pipeline.0.backend_args':
                                  dict(backend='http'), **options})


def test_images_over_http_are_sampled_and_the_line_says_what_is_not_checked(
        tmp_path, monkeypatch, notes):
    root = coco_set(tmp_path / 'coco', num_images=10, side=16)
    monkeypatch.setattr(remote, 'REMOTE_SAMPLE', 3)  # fetches positions 0, 4 and 9
    with served(root) as url:
        check_inputs(http_config(root, url), LOADERS)
        assert notes == [f"images on {url}/train2017/ (backend 'http'): 3 of 10 fetched and "
                         "decoded (spread over the list); not checked: the others' presence."]
        (root / 'train2017' / '000001.jpg').unlink()  # not in the sample: not checked
        check_inputs(http_config(root, url), LOADERS)
        (root / 'train2017' / '000009.jpg').unlink()
        with pytest.raises(DataError) as raised:
            check_inputs(http_config(root, url), LOADERS)
    line = str(raised.value)
    assert line.startswith(f"{url}/train2017/000009.jpg cannot be read through backend 'http' "
                           '(HTTPError: HTTP Error 404')
    assert "CheckedLoadImageFromFile with backend_args={'backend': 'http'}" in line
    assert 'cocodataset.org' not in line and 'make demo' not in line


def test_a_registered_store_behind_local_looking_paths(tmp_path, notes):
    """petrel's shape: the config's paths look local (/mapped-storage/...), backend_args map
    them to the store's keys; nothing of it is on the local disk."""
    coco_set(tmp_path / 'bucket' / 'coco', num_images=3, side=16)
    register_store('unit', tmp_path / 'bucket')
    args = mapped_args('unit')
    cfg = det(f'{MAPPED_ROOT}coco/')
    cfg.train_dataloader.dataset.backend_args = args
    cfg.train_dataloader.dataset.pipeline[0].backend_args = args
    check_inputs(cfg, LOADERS)
    assert notes == [f"images on {MAPPED_ROOT}coco/train2017/ (backend 'hoststore'): all 3 "
                     'fetched and decoded.']
    (tmp_path / 'bucket' / 'coco' / 'train2017' / '000002.jpg').write_bytes(b'<html>')
    with pytest.raises(DataError, match=r'coco/train2017/000002.jpg does not decode as an image '
                       r"\(UnidentifiedImageError: .*\), read through backend 'hoststore'"):
        check_inputs(cfg, LOADERS)


def test_a_uri_behind_a_local_data_root_is_named(tmp_path):
    coco_set(tmp_path / 'bucket' / 'coco', num_images=2, side=16)
    register_store('unit', tmp_path / 'bucket')
    cfg = det(f'{tmp_path}/bucket/coco/', **{
        'train_dataloader.dataset.data_prefix.img': 'hoststore://unit/coco/train2017/'})
    with pytest.raises(DataError, match=r"/bucket/coco/hoststore://unit/coco/train2017/000000"
                       r".jpg: mmengine's fileio has no storage backend for it .*put the URI in "
                       r"data_root and keep data_prefix relative, or write data_root=''"):
        check_inputs(cfg, LOADERS)
