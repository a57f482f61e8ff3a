"""Every shipped config names the reliability components in its runtime (a config choice, so
mmdet's/mmseg's own tools get them too), and a host config without them keeps mmengine's."""
import pytest

from config_helpers import read, shipped_configs
from conftest import one_per_family_fast


@pytest.mark.parametrize('path', one_per_family_fast(shipped_configs()) + [
    'configs/toy/maskrcnn_convnext_toy_coco.py', 'configs/toy/upernet_convnext_toy_ade20k.py',
    'configs/toy/deeplabv3plus_convnext_toy_ade20k.py',
    'configs/toy/mask2former_convnext_toy_coco.py',
    'configs/toy/mask2former_convnext_toy_coco_panoptic.py',
    'configs/toy/dino_convnext_toy_coco.py'])
def test_config_names_crash_safe_checkpoints_and_the_training_hooks(path):
    cfg = read(path)
    assert cfg.default_hooks.checkpoint.type == 'convnext_backbone.CrashSafeCheckpointHook'
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert 'convnext_backbone.NonFiniteLossHook' in hooks
    assert 'convnext_backbone.RNGStateHook' in hooks
    assert 'convnext_backbone' in cfg.custom_imports['imports']


def test_host_configs_keep_mmengines_checkpoint_hook(host_config):
    cfg = host_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    assert cfg.default_hooks.checkpoint.type == 'CheckpointHook'
    assert not cfg.get('custom_hooks')
