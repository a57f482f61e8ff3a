"""The newer rows' cases of the bad-input table (test_bad_input.py): whole-model checkpoints
against the model, a work dir holding an earlier run, the data itself, backbone arguments from a
config, tool options. Each case is ``case(tmp_path)`` and raises what a user would see."""
import argparse
import logging
import types

import torch
from bad_data import coco_set, seg_set
from torch import nn

from convnext_backbone.cli import arguments, checks, config, data_checks
from convnext_backbone.engine import CrashSafeCheckpointHook, LayerDecayOptimWrapperConstructor
from convnext_backbone.models import ConvNeXt

from conftest import REPO

ARCH = dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256])
TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')
TOY_SEG = str(REPO / 'configs' / 'toy' / 'upernet_convnext_toy_ade20k.py')


# Whole-model checkpoints (load_from, tools/test.py CHECKPOINT) ------------------------------------

class Detector(nn.Module):
    """The parts of a detector the check reads: a backbone and a softmax bbox head."""

    def __init__(self, arch=ARCH, num_classes=4):
        super().__init__()
        self.backbone = ConvNeXt(arch=arch)
        self.roi_head = nn.Module()
        self.roi_head.bbox_head = nn.Module()
        self.roi_head.bbox_head.fc_cls = nn.Linear(8, num_classes + 1)


def load_from(model: nn.Module, state: dict, partial=False, path='ckpt/epoch_36.pth'):
    """What mmengine's Runner.load_checkpoint hands the hook: the loaded checkpoint."""
    hook = CrashSafeCheckpointHook(partial_load=partial)
    runner = types.SimpleNamespace(model=model, _load_from=path)
    checkpoint = {'state_dict': dict(state), 'meta': {}}
    hook.after_load_checkpoint(runner, checkpoint)
    return checkpoint


def load_from_detector_of_another_arch(tmp_path):
    other = Detector(arch='v2-atto', num_classes=80).state_dict()
    load_from(Detector(), other, path='mask_rcnn_convnextv2_atto_coco.pth')


def load_from_detector_with_other_num_classes(tmp_path):
    load_from(Detector(), Detector(num_classes=80).state_dict())


def load_from_detector_of_another_backbone(tmp_path):
    resnet = {'backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
              'backbone.layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1),
              'roi_head.bbox_head.fc_cls.weight': torch.zeros(81, 8),
              'roi_head.bbox_head.fc_cls.bias': torch.zeros(81)}
    load_from(Detector(), resnet, path='mask_rcnn_r50_fpn_1x_coco.pth')


def load_from_integer_weights(tmp_path):
    state = {k: v.to(torch.int64) if k.endswith('dwconv.weight') else v
             for k, v in Detector().state_dict().items()}
    load_from(Detector(), state)


def _safetensors_with(tmp_path, dtype):
    from safetensors.torch import save_file
    state = {k: v.contiguous().clone() for k, v in ConvNeXt(arch=ARCH).state_dict().items()}
    state['stages.0.0.pwconv1.weight'] = state['stages.0.0.pwconv1.weight'].to(dtype)
    path = tmp_path / 'convnext_small_1k.safetensors'
    save_file(state, str(path))
    from convnext_backbone.checkpoint import load_pretrained
    load_pretrained(ConvNeXt(arch=ARCH), path, logger='silent')


def safetensors_integer_weights(tmp_path):
    _safetensors_with(tmp_path, torch.int32)


def safetensors_bool_weights(tmp_path):
    _safetensors_with(tmp_path, torch.bool)


# Work dir -----------------------------------------------------------------------------------------

def work_dir_holds_an_earlier_run(tmp_path):
    (tmp_path / 'epoch_12.pth').write_bytes(b'an earlier run')
    runner = types.SimpleNamespace(work_dir=str(tmp_path), _resume=False,
                                   logger=logging.getLogger('bad_input'))
    CrashSafeCheckpointHook().before_train(runner)


def work_dir_blocked_by_a_file(tmp_path):
    (tmp_path / 'runs').write_text('a file where the work dir should go')
    checks.check_work_dir(str(tmp_path / 'runs' / 'toy'))


# Data ---------------------------------------------------------------------------------------------

def det_config(root, **options):
    return config.load_config(TOY_DET, {'train_dataloader.dataset.data_root': f'{root}/',
                                        **options})


def check_det(root, **options):
    data_checks.check_data(det_config(root, **options), ['train_dataloader'])


def check_seg(root, **options):
    cfg = config.load_config(TOY_SEG, {'train_dataloader.dataset.data_root': str(root),
                                       **options})
    data_checks.check_data(cfg, ['train_dataloader'])


def annotation_json_syntax_error(tmp_path):
    root = coco_set(tmp_path / 'coco')
    ann = root / 'annotations' / 'instances_train2017.json'
    ann.write_text('{"images": [\n  {"id": 1, "file_name": "a.jpg",}\n]}')
    check_det(root)


def annotation_not_coco_style(tmp_path):
    root = coco_set(tmp_path / 'coco')
    (root / 'annotations' / 'instances_train2017.json').write_text('[{"file": "a.jpg"}]')
    check_det(root)


def dataset_empty(tmp_path):
    check_det(coco_set(tmp_path / 'coco', num_images=0))


def image_listed_but_missing(tmp_path):
    root = coco_set(tmp_path / 'coco')
    (root / 'train2017' / '000001.jpg').unlink()
    check_det(root)


def image_corrupt(tmp_path):
    root = coco_set(tmp_path / 'coco')
    (root / 'train2017' / '000001.jpg').write_bytes(b'<html>404 Not Found</html>')
    check_det(root)


def image_truncated(tmp_path):
    root = coco_set(tmp_path / 'coco')
    image = root / 'train2017' / '000001.jpg'
    image.write_bytes(image.read_bytes()[:300])
    check_det(root)


def classes_match_no_category(tmp_path):
    root = coco_set(tmp_path / 'coco')
    misspelt = ('rectangle', 'elipse', 'triangle', 'star')
    check_det(root, **{'train_dataloader.dataset.metainfo.classes': misspelt})


def head_num_classes_below_classes(tmp_path):
    check_det(coco_set(tmp_path / 'coco'), **{'model.roi_head.bbox_head.num_classes': 3})


def seg_dataset_empty(tmp_path):
    root = seg_set(tmp_path / 'ade')
    for image in (root / 'images' / 'training').iterdir():
        image.unlink()
    check_seg(root)


def seg_label_map_missing(tmp_path):
    root = seg_set(tmp_path / 'ade')
    (root / 'annotations' / 'training' / '000001.png').unlink()
    check_seg(root)


def seg_head_num_classes_below_classes(tmp_path):
    check_seg(seg_set(tmp_path / 'ade'), **{'model.decode_head.num_classes': 3})


# Backbone arguments from a config ----------------------------------------------------------------

def backbone_argument_misspelt(tmp_path):
    ConvNeXt(arch=ARCH, drop_path=0.1)


def build_in_mmdet(**backbone):
    """How an mmdet config builds it: mmdet's registry, our prefixed type name."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        MODELS.build(dict(type='convnext_backbone.ConvNeXt', **backbone))


def backbone_argument_misspelt_in_config(tmp_path):
    build_in_mmdet(arch=ARCH, out_indice=(1, 2, 3))


def backbone_arch_from_config(tmp_path):
    build_in_mmdet(arch='v2-tiiny')


def backbone_out_indices_from_config(tmp_path):
    build_in_mmdet(arch=ARCH, out_indices=(0, 4))


def backbone_output_stride_from_config(tmp_path):
    build_in_mmdet(arch=ARCH, output_stride=4)


# Tool options -------------------------------------------------------------------------------------

class RaisingParser(argparse.ArgumentParser):
    """argparse's usage error as an exception (the tools print it and exit with status 2)."""

    def error(self, message):
        raise argparse.ArgumentError(None, message)


def cfg_options_not_key_value(tmp_path):
    parser = RaisingParser()
    arguments.add_config(parser)
    parser.parse_args([TOY_DET, '--cfg-options', 'train_dataloader.batch_size'])


def partial_load_without_our_checkpoint_hook(tmp_path):
    cfg = config.load_config(TOY_DET, {'default_hooks.checkpoint.type': 'CheckpointHook'})
    config.set_checkpoint_hook_options(cfg, partial_load=True)


# Layer decay with mmpretrain-convention backbones -------------------------------------------------

class _OddDepth(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)

    def get_layer_depth(self, name, stage):
        return 0, 2


class _FlatDepth(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

    def get_layer_depth(self, param_name, prefix=''):
        return 3, 8


def _decay(backbone):
    model = nn.Module()
    model.backbone = backbone
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
    LayerDecayOptimWrapperConstructor(cfg, dict(decay_rate=0.9))(model)


def layer_decay_unknown_get_layer_depth(tmp_path):
    _decay(_OddDepth())


def layer_decay_everything_on_one_id(tmp_path):
    _decay(_FlatDepth())

