"""The shipped configs by package name (``convnext_backbone::...``) and the model index that lists
them, in this tree (where ``convnext_backbone/.mim`` links to configs/ and tools/)."""
import os.path as osp

import pytest
import yaml
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


# The paper's released models (the official READMEs, object_detection/ and semantic_segmentation/
# of facebookresearch/ConvNeXt): config -> released file, and its published result.
COCO = 'https://dl.fbaipublicfiles.com/convnext/coco/'
ADE = 'https://dl.fbaipublicfiles.com/convnext/ade20k/'
RELEASED = {
    'maskrcnn_convnext_t_coco': (COCO + 'mask_rcnn_convnext_tiny_1k_3x.pth', (46.2, 41.7)),
    'maskrcnn_convnext_t_3x_coco': (COCO + 'mask_rcnn_convnext_tiny_1k_3x.pth', (46.2, 41.7)),
    'cascade_maskrcnn_convnext_t_3x_coco': (
        COCO + 'cascade_mask_rcnn_convnext_tiny_1k_3x.pth', (50.4, 43.7)),
    'cascade_maskrcnn_convnext_s_3x_coco': (
        COCO + 'cascade_mask_rcnn_convnext_small_1k_3x.pth', (51.9, 45.0)),
    'cascade_maskrcnn_convnext_b_3x_coco': (
        COCO + 'cascade_mask_rcnn_convnext_base_1k_3x.pth', (52.7, 45.6)),
    'cascade_maskrcnn_convnext_b_in22k_3x_coco': (
        COCO + 'cascade_mask_rcnn_convnext_base_22k_3x.pth', (54.0, 46.9)),
    'cascade_maskrcnn_convnext_l_in22k_3x_coco': (
        COCO + 'cascade_mask_rcnn_convnext_large_22k_3x.pth', (54.8, 47.6)),
    'cascade_maskrcnn_convnext_xl_in22k_3x_coco': (
        COCO + 'cascade_mask_rcnn_convnext_xlarge_22k_3x.pth', (55.2, 47.7)),
    'upernet_convnext_t_160k_ade20k': (ADE + 'upernet_convnext_tiny_1k_512x512.pth', (46.0, 46.7)),
    'upernet_convnext_s_160k_ade20k': (ADE + 'upernet_convnext_small_1k_512x512.pth', (48.7, 49.6)),
    'upernet_convnext_b_160k_ade20k': (ADE + 'upernet_convnext_base_1k_512x512.pth', (49.1, 49.9)),
    'upernet_convnext_b_in22k_640_160k_ade20k': (
        ADE + 'upernet_convnext_base_22k_640x640.pth', (52.6, 53.1)),
    'upernet_convnext_l_in22k_640_160k_ade20k': (
        ADE + 'upernet_convnext_large_22k_640x640.pth', (53.2, 53.7)),
    'upernet_convnext_xl_in22k_640_160k_ade20k': (
        ADE + 'upernet_convnext_xlarge_22k_640x640.pth', (53.6, 54.0)),
}


def test_each_released_model_is_indexed_with_its_weights_and_the_papers_result():
    from convnext_backbone.checkpoint import releases
    found = {r.name: r for r in releases()}  # what `tools/test.py CONFIG released` reads
    configs = {model['Name']: model['Config'] for _, model in entries()}
    assert set(found) == set(RELEASED)
    for name, (url, result) in RELEASED.items():
        metrics = [v for r in found[name].results for v in (r['Metrics'] or {}).values()]
        assert (found[name].weights, tuple(metrics)) == (url, result), name
        assert osp.realpath(found[name].config) == osp.realpath(REPO / configs[name])


def test_mim_reads_the_weights_from_the_index():
    """What ``mim download`` / ``mim search --field weight`` parse (mim's own parser)."""
    pytest.importorskip('mim')
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    table = convert2df(load(str(PACKAGE_DIR / '.mim' / 'model-index.yml')))
    weights = table['weight'].dropna().to_dict()
    assert weights == {name: url for name, (url, _) in RELEASED.items()}


def test_released_weights_need_a_url_a_result_and_a_file_name_of_their_own(tmp_path):
    (tmp_path / 'configs' / 'a').mkdir(parents=True)
    for name in ('x', 'y', 'z'):
        (tmp_path / 'configs' / 'a' / f'{name}.py').write_text('')
    model = {'In Collection': 'C', 'Metadata': {'Training Data': 'COCO', 'Parameters (M)': 1,
                                                'FLOPs (G)': 1}}
    result = [{'Task': 'Object Detection', 'Dataset': 'COCO', 'Metrics': {'box AP': 1.0}}]
    (tmp_path / 'configs' / 'a' / 'metafile.yml').write_text(yaml.safe_dump({
        'Collections': [{'Name': 'C'}], 'Models': [
            {**model, 'Name': 'x', 'Config': 'configs/a/x.py', 'Results': result,
             'Weights': 'dl/x.pth'},
            {**model, 'Name': 'y', 'Config': 'configs/a/y.py', 'Results': [
                {**result[0], 'Metrics': None}], 'Weights': 'https://a.example/y.pth'},
            {**model, 'Name': 'z', 'Config': 'configs/a/z.py', 'Results': result,
             'Weights': 'https://b.example/y.pth'}]}))
    (tmp_path / 'model-index.yml').write_text(yaml.safe_dump(
        {'Import': ['configs/a/metafile.yml']}))
    found = problems(tmp_path)
    assert "configs/a/metafile.yml: x's Weights 'dl/x.pth' is not an http(s) URL" in found
    assert 'configs/a/metafile.yml: y names released Weights but no published result ' \
           '(Metrics)' in found
    assert any(line.startswith('the file name y.pth ends different Weights URLs') for line in found)
