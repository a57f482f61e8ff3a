"""data.loader_checks: a loader setting the host cannot use is one line naming the config key,
its value and the host's own reason, before any data is read (the generative test tries every
key; these rows pin the messages)."""
import pytest
from mmengine.config import Config

from convnext_backbone.data import DataError
from convnext_backbone.data.loader_checks import check_loaders

from conftest import REPO

TOY_DET = REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py'
TOY_SEG = REPO / 'configs' / 'toy' / 'upernet_convnext_toy_ade20k.py'


@pytest.fixture(scope='module')
def toy_det():
    return Config.fromfile(TOY_DET)


def test_the_toy_configs_loaders_pass(toy_det):
    check_loaders(toy_det, ['train_dataloader', 'val_dataloader', 'test_dataloader'])
    check_loaders(Config.fromfile(TOY_SEG), ['train_dataloader', 'val_dataloader'])


@pytest.mark.parametrize('key, value, message', [
    ('train_dataloader.batch_size', 0, 'train_dataloader.batch_size = 0 cannot be used. Write '
     'the number of images per batch'),
    ('val_dataloader.num_workers', -1, 'val_dataloader.num_workers = -1 cannot be used '
     '(ValueError: num_workers option should be non-negative'),
    ('train_dataloader.persistent_workers', True, 'train_dataloader.persistent_workers = True '
     'cannot be used (ValueError: persistent_workers option needs num_workers > 0)'),
    ('train_dataloader.sampler.type', 'DefaultSampeler', "train_dataloader.sampler = "
     "{'type': 'DefaultSampeler', 'shuffle': True} cannot be used (KeyError: "
     "'DefaultSampeler is not in the mmdet::data sampler registry"),
    ('train_dataloader.dataset.pipeline.2.prob', 1.5, "train_dataloader.dataset.pipeline.2 = "
     "{'type': 'RandomFlip', 'prob': 1.5} cannot be used (AssertionError"),
    ('train_dataloader.dataset.data_root', 3, 'train_dataloader.dataset.data_root = 3 cannot '
     'be used. Write a path as a string.'),
    ('train_dataloader.dataset.filter_cfg.min_size', None, 'filter_cfg.min_size = None cannot '
     'be used'),
    ('val_dataloader.dataset.type', 'CocoDatset', "val_dataloader.dataset.type = 'CocoDatset' "
     'cannot be used. Name a registered dataset class'),
    ('train_dataloader.dataset.metainfo.classes', 'rectangle', "metainfo = {'classes': "
     "'rectangle'} cannot be used. Write metainfo=dict(classes=('name', ...))"),
], ids=lambda v: v if isinstance(v, str) and '.' in v and ' ' not in v else '')
def test_a_setting_the_host_cannot_use_is_one_line_naming_the_key(toy_det, key, value,
                                                                    message):
    cfg = Config(toy_det.to_dict())  # a copy
    cfg.merge_from_dict({key: value})
    with pytest.raises(DataError) as error:
        check_loaders(cfg, ['train_dataloader', 'val_dataloader'])
    assert message in str(error.value)
    assert '\n' not in str(error.value)
