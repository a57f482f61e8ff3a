"""The toy UperNet config validates images of mixed sizes: its test pipeline keeps each image's
aspect ratio, and mmseg's data preprocessor refuses a test batch of mixed sizes ("The image size
in a batch should be the same"), so the config validates one image at a time, as mmseg's own
configs do. Images of three aspect ratios, validated through mmengine's Runner."""
import pytest
from bad_data import seg_set
from mmengine.runner import Runner

from convnext_backbone.cli import config

from conftest import REPO

TOY_SEG = str(REPO / 'configs' / 'toy' / 'upernet_convnext_toy_ade20k.py')
SIZES = [(48, 32), (40, 64), (40, 40)]  # (W, H): three aspect ratios


def toy_seg(tmp_path, **options):
    root = seg_set(tmp_path / 'ade', num_images=3, sizes=SIZES)
    cfg = config.load_config(TOY_SEG, {'val_dataloader.dataset.data_root': str(root),
                                       'train_dataloader.dataset.data_root': str(root),
                                       'test_dataloader.dataset.data_root': str(root),
                                       **options})
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


@pytest.mark.slow
def test_toy_upernet_validates_images_of_mixed_sizes(tmp_path):
    metrics = Runner.from_cfg(toy_seg(tmp_path)).val()
    assert 'mIoU' in metrics


@pytest.mark.slow
def test_a_batch_of_mixed_sizes_is_what_failed(tmp_path):
    """The shipped config's former val batch of 8 (here 3): mmseg refuses the batch."""
    cfg = toy_seg(tmp_path, **{'val_dataloader.batch_size': 3})
    with pytest.raises(AssertionError, match='image size in a batch should be the same'):
        Runner.from_cfg(cfg).val()
