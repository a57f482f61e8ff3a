"""The shipped configs by package name (``convnext_backbone::...``) and the model index that lists
them, in this tree (where ``convnext_backbone/.mim`` links to configs/ and tools/)."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.config.utils import _get_cfg_metainfo

from convnext_backbone import compat

from conftest import REPO
from model_index import config_files, entries, problems

PACKAGE_DIR = REPO / 'convnext_backbone'


def inheriting(tmp_path, base):
    """A user's config file, outside the clone's configs, that only inherits ``base``."""
    path = tmp_path / 'my_config.py'
    path.write_text(f'_base_ = [{base!r}]\n')
    return path


def test_every_config_is_listed_once_and_every_entry_is_complete():
    assert problems() == []
    assert len(entries()) == len(config_files())


def test_mmengine_reads_the_shipped_index_for_every_listed_config():
    # What mmengine does for a 'package::name' base before falling back to .mim/configs/name.
    for _, model in entries():
        name = model['Config'].partition('/')[-1]
        assert _get_cfg_metainfo(str(PACKAGE_DIR), name)['Config'] == model['Config']


def test_the_index_knows_its_tasks_and_results():
    by_name = {model['Name']: model for _, model in entries()}
    flagship = by_name['maskrcnn_convnext_t_3x_coco']
    assert {r['Task'] for r in flagship['Results']} == {'Object Detection',
                                                         'Instance Segmentation'}
    assert [r['Metrics'] for r in flagship['Results']] == [{'box AP': 46.2}, {'mask AP': 41.7}]
    assert flagship['Metadata']['Parameters (M)'] == pytest.approx(48.10, abs=0.01)
    # ours, not the paper's: no published result
    assert all(r['Metrics'] is None for r in by_name['maskrcnn_convnextv2_atto_3x_coco']['Results'])


def test_the_prefix_names_each_shipped_config_file():
    for config in config_files():
        name = config.partition('/')[-1]
        assert osp.realpath(compat.shipped_config_path(name)) == osp.realpath(REPO / config)


def test_an_unknown_name_is_one_error_naming_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'convnext_backbone::maskrcnn/nope\.py: no such '
                       r'config in .*\.mim/configs'):
        Config.fromfile(inheriting(tmp_path, 'convnext_backbone::maskrcnn/nope.py'))


def test_without_the_fix_mmengine_refuses_the_prefix(tmp_path):
    path = inheriting(tmp_path, 'convnext_backbone::toy/maskrcnn_convnext_toy_coco.py')
    compat.revert()
    try:
        with pytest.raises(AssertionError, match='does not support to load convnext_backbone'):
            Config.fromfile(path)
    finally:
        compat.apply()


FAST = ('toy/maskrcnn_convnext_toy_coco.py',)  # reading a config through mmdet's bases: seconds
FULL = ('toy/upernet_convnext_toy_ade20k.py', 'maskrcnn_convnext_t_coco.py',
        'maskrcnn/maskrcnn_convnext_t_3x_coco.py',
        'cascade_maskrcnn/cascade_maskrcnn_convnext_t_3x_coco.py',
        'upernet/upernet_convnextv2_atto_160k_ade20k.py',
        'examples/maskrcnn_convnext_t_my_dataset.py')


@pytest.mark.parametrize('name', [*FAST, *(pytest.param(n, marks=pytest.mark.slow) for n in FULL)])
def test_a_user_config_inherits_a_shipped_config_by_package_name(tmp_path, name):
    # The same config as inheriting the file by path: its own relative _base_ links and its
    # mmdet::/mmseg:: bases resolved, nothing scoped differently.
    by_name = Config.fromfile(inheriting(tmp_path, f'convnext_backbone::{name}'))
    by_path = Config.fromfile(REPO / 'configs' / name)
    assert by_name.to_dict() == by_path.to_dict()
