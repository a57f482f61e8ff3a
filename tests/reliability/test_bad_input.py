"""Bad input gets a clear error that names the problem and the fix -- never a silent fallback,
never a deep stack trace from inside mmengine/torch. One parametrized test over every kind of
input a user hands us: backbone arguments (also built from a config) and inputs, checkpoint files
(pretrained weights, and whole-model checkpoints against the model), the layer-decay
constructor, configs, the work dir, the data itself (annotation files, images, classes against
the heads), and the tools' command lines (called in process through their ``main``). Every
error is a class our tools print as one ``error:`` line (``cli.USER_ERRORS``, or argparse's
own usage error); test_bad_input_tools.py checks that a tool prints it without a traceback.
The newer rows' cases live in bad_input_cases.py."""
import argparse

import bad_input_cases as more
import pytest
import torch
from torch import nn

from convnext_backbone.checkpoint import (
    CheckpointMismatchError,
    CheckpointReadError,
    UnknownCheckpointFormatError,
    UntrustedCheckpointError,
    load_pretrained,
    safety,
)
from convnext_backbone.cli import USER_ERRORS, checks, config, error_line
from convnext_backbone.cli.data_checks import DataError
from convnext_backbone.engine import LayerDecayConfigError, LayerDecayOptimWrapperConstructor
from convnext_backbone.engine.checkpoint_hook import WorkDirInUseError
from convnext_backbone.models import ConvNeXt
from convnext_backbone.models.convnext import ConvNeXtArgumentError, ConvNeXtConfigError

from conftest import REPO, load_tool

ARCH = dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256])
TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')


def small():
    return ConvNeXt(arch=ARCH)


# Backbone -----------------------------------------------------------------------------------------

def arch_unknown(tmp_path):
    ConvNeXt(arch='v1-tiiny')


def arch_unversioned(tmp_path):
    ConvNeXt(arch='tiny')


def channels_per_stage_mismatch(tmp_path):
    ConvNeXt(arch=dict(depths=[1, 1, 3, 1], channels=[32, 64, 128]))


def out_indices_out_of_range(tmp_path):
    ConvNeXt(arch=ARCH, out_indices=(1, 4))


def frozen_stages_out_of_range(tmp_path):
    ConvNeXt(arch=ARCH, frozen_stages=5)


def input_without_batch_dim(tmp_path):
    small()(torch.zeros(3, 64, 64))


def input_too_small(tmp_path):
    small()(torch.zeros(1, 3, 16, 16))


def input_channels_mismatch(tmp_path):
    small()(torch.zeros(1, 1, 64, 64))


# Checkpoints --------------------------------------------------------------------------------------

def checkpoint_missing(tmp_path):
    from mmengine.runner import CheckpointLoader  # load_from / --resume / init_detector
    CheckpointLoader.load_checkpoint(str(tmp_path / 'epoch_12.pth'), 'cpu')


def checkpoint_truncated(tmp_path):
    path = tmp_path / 'convnext.pth'
    torch.save({'state_dict': small().state_dict()}, path)
    path.write_bytes(path.read_bytes()[:5000])
    load_pretrained(small(), path, logger='silent')


def checkpoint_of_another_arch(tmp_path):
    path = tmp_path / 'convnextv2_atto.pth'
    torch.save({'model': ConvNeXt(arch='v2-atto').state_dict()}, path)
    load_pretrained(ConvNeXt(arch='v2-femto'), path, logger='silent')


def checkpoint_keys_match_nothing(tmp_path):
    load_pretrained(small(), {'encoder.layer.0.weight': torch.zeros(3),
                              'fc.weight': torch.zeros(2, 2)}, logger='silent')


def detector_checkpoint_of_another_backbone(tmp_path):
    """A Mask R-CNN R-50 checkpoint given as the backbone's pretrained weights. (A ConvNeXt
    detector checkpoint is fine: its backbone part is taken, see the test below.)"""
    resnet_detector = {'backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
                       'backbone.bn1.weight': torch.zeros(64),
                       'backbone.layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1),
                       'neck.lateral_convs.0.conv.weight': torch.zeros(256, 256, 1, 1),
                       'rpn_head.rpn_conv.weight': torch.zeros(256, 256, 3, 3)}
    path = tmp_path / 'mask_rcnn_r50_fpn_1x_coco.pth'
    torch.save({'state_dict': resnet_detector, 'meta': {}}, path)
    load_pretrained(small(), path, logger='silent')


def checkpoint_needs_code_to_load(tmp_path):
    import argparse
    path = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': {}, 'meta': {'args': argparse.Namespace(lr=1)}}, path)
    safety._trusted_paths.discard(str(path))
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.load_checkpoint(str(path), 'cpu')


# Layer-decay constructor --------------------------------------------------------------------------

class Detector(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(4, 2)


def build_constructor(model, **paramwise):
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
    LayerDecayOptimWrapperConstructor(cfg, {**dict(decay_rate=0.9), **paramwise})(model)


def decay_type_unknown(tmp_path):
    build_constructor(Detector(small()), decay_type='block_wise')


def decay_rate_out_of_range(tmp_path):
    build_constructor(Detector(small()), decay_rate=1.5)


def num_layers_disagrees_with_backbone(tmp_path):
    build_constructor(Detector(small()), num_layers=12)   # the toy backbone has 4


def backbone_without_layer_depth(tmp_path):
    build_constructor(Detector(nn.Conv2d(3, 8, 3)))


# Configs ------------------------------------------------------------------------------------------

def config_type_typo(tmp_path):
    cfg = config.load_config(TOY_DET, {'model.backbone.type': 'convnext_backbone.ConvNext'})
    checks.check_type_names(cfg)


def config_type_without_prefix(tmp_path):
    cfg = config.load_config(TOY_DET, {'model.backbone.type': 'ConvNeXt'})
    checks.check_type_names(cfg)


def config_dataset_root_missing(tmp_path):
    cfg = config.load_config(TOY_DET, {'train_dataloader.dataset.data_root': '/nowhere/coco/'})
    checks.check_datasets(cfg, ['train_dataloader'])


# Tools' arguments ---------------------------------------------------------------------------------

def train_config_missing(tmp_path):
    load_tool('train').main(['configs/maskrcnn_convnext_t_cooc.py'])


def train_resume_missing(tmp_path):
    load_tool('train').main([TOY_DET, '--resume', str(tmp_path / 'epoch_3.pth')])


def train_resume_truncated(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': small().state_dict()}, path)
    path.write_bytes(path.read_bytes()[:5000])
    load_tool('train').main([TOY_DET, '--resume', str(path)])


def evaluate_checkpoint_missing(tmp_path):
    load_tool('test').main([TOY_DET, str(tmp_path / 'epoch_12.pth')])


def evaluate_out_not_pkl(tmp_path):
    path = tmp_path / 'epoch_12.pth'
    torch.save({'state_dict': {}}, path)
    load_tool('test').main([TOY_DET, str(path), '--out', str(tmp_path / 'results.json'),
                            '--work-dir', str(tmp_path)])


CASES = [
    # case, error type, what the message names: (the problem, the fix)
    (arch_unknown, ValueError, ["Unknown ConvNeXt arch 'v1-tiiny'"], ["Valid archs", "'v1-tiny'"]),
    (arch_unversioned, ValueError, ["'tiny' is ambiguous or unversioned"],
     ["write 'v1-tiny' or 'v2-tiny'"]),
    (channels_per_stage_mismatch, ValueError, ['got 4 depths', '3 channels'],
     ['must have the same length (one entry per stage)']),
    (out_indices_out_of_range, ValueError, ['[4] out of range', '4 stages'],
     ['valid indices are [-4, 3]']),
    (frozen_stages_out_of_range, ValueError, ['got 5'], ['must be an int in [-1, 4]']),
    (input_without_batch_dim, ValueError, ['expects a 4-D input', 'shape (3, 64, 64)'],
     ['x.unsqueeze(0)']),
    (input_too_small, ValueError, ['(16, 16) is too small'],
     ['H and W must be >= 32', 'pad the images to at least 32x32']),
    (input_channels_mismatch, ValueError, ['in_channels=3 but got an input with 1 channels'],
     ['Set in_channels=1']),
    (checkpoint_missing, FileNotFoundError, ['epoch_12.pth does not exist'],
     ['check the path (load_from, --resume']),
    (checkpoint_truncated, CheckpointReadError, ['convnext.pth is not a readable checkpoint'],
     ['probably truncated (an interrupted download', 'get the file again']),
    (checkpoint_of_another_arch, CheckpointMismatchError,
     ["does not fit the ConvNeXt backbone with arch 'v2-femto'", 'shape mismatches',
      'looks like v2-atto'], ['choose the arch that matches it']),
    (checkpoint_keys_match_nothing, UnknownCheckpointFormatError,
     ['Cannot tell which ConvNeXt checkpoint format', 'encoder.layer.0.weight'],
     ["pass prefix='that.prefix.'"]),
    (detector_checkpoint_of_another_backbone, UnknownCheckpointFormatError,
     ["'backbone.' part of this checkpoint is not a ConvNeXt", "'layer1.0.conv1.weight'"],
     ['give a ConvNeXt checkpoint', 'init_cfg=None']),
    (checkpoint_needs_code_to_load, UntrustedCheckpointError,
     ['refusing to load', 'argparse.Namespace', 'without executing code'],
     ['--trust-checkpoint', 'trust_checkpoint(']),
    (decay_type_unknown, LayerDecayConfigError, ["decay_type = 'block_wise'"],
     ["must be one of 'layer_wise', 'stage_wise'",
      '--cfg-options optim_wrapper.paramwise_cfg.decay_type=layer_wise']),
    (decay_rate_out_of_range, LayerDecayConfigError, ['decay_rate = 1.5'],
     ['must be a number in (0, 1]', '--cfg-options optim_wrapper.paramwise_cfg.decay_rate=0.9']),
    (num_layers_disagrees_with_backbone, LayerDecayConfigError,
     ['num_layers=12 disagrees with the backbone ConvNeXt, which has num_layers=4'],
     ['drop num_layers from the config']),
    (backbone_without_layer_depth, LayerDecayConfigError,
     ['Detector.backbone is Conv2d, which has no such'],
     ['Use a backbone that implements it', 'get_layer_depth(param_name, decay_type)']),
    (config_type_typo, checks.UnknownTypeError,
     ["model.backbone.type = 'convnext_backbone.ConvNext': no such type"],
     ["Did you mean 'convnext_backbone.ConvNeXt'?", 'ConvNeXt (model)']),
    (config_type_without_prefix, checks.UnknownTypeError,
     ["model.backbone.type = 'ConvNeXt': mmdet has no such type; it is convnext_backbone's"],
     ["Did you mean 'convnext_backbone.ConvNeXt'?", "need the 'convnext_backbone.' prefix"]),
    (config_dataset_root_missing, checks.DatasetNotFoundError,
     ['COCO 2017 not found: missing /nowhere/coco/'],
     ['cocodataset.org', '--cfg-options train_dataloader.dataset.data_root=PATH', 'make demo']),
    (train_config_missing, FileNotFoundError, ['maskrcnn_convnext_t_cooc.py does not exist'],
     ['Configs live in configs/']),
    (train_resume_missing, FileNotFoundError, ['--resume: checkpoint', 'does not exist'],
     ['Give the path of a .pth file written by tools/train.py', 'last_checkpoint']),
    (train_resume_truncated, CheckpointReadError,
     ['epoch_3.pth is not a readable checkpoint', 'truncated'],
     ['use another one (e.g. the previous epoch_N.pth']),
    (evaluate_checkpoint_missing, FileNotFoundError, ['CHECKPOINT: checkpoint', 'does not exist'],
     ['Give the path of a .pth file']),
    (evaluate_out_not_pkl, ValueError, ['--out for detection must be a .pkl file', 'results.json'],
     ['use e.g. --out results.pkl']),
    # Whole-model checkpoints (load_from, tools/test.py CHECKPOINT) against the model
    (more.load_from_detector_of_another_arch, CheckpointMismatchError,
     ['mask_rcnn_convnextv2_atto_coco.pth does not fit the model', 'have another shape',
      'The checkpoint has backbone v2-atto', 'num_classes 80', 'the model has backbone a custom',
      'num_classes 4'],
     ['Use the checkpoint that matches the config', '--partial-load']),
    (more.load_from_detector_with_other_num_classes, CheckpointMismatchError,
     ['roi_head.bbox_head.fc_cls.weight [81, 8] vs model [5, 8]', 'num_classes 80'],
     ['to fine-tune from it on another dataset', 'tools/train.py --partial-load',
      'default_hooks.checkpoint.partial_load=True']),
    (more.load_from_detector_of_another_backbone, CheckpointMismatchError,
     ['mask_rcnn_r50_fpn_1x_coco.pth does not fit', '78 are missing',
      'backbone not a ConvNeXt (e.g. conv1.weight'], ['Use the checkpoint that matches']),
    (more.load_from_integer_weights, CheckpointMismatchError,
     ['tensors hold torch.int64 values where the model has torch.float32 weights',
      'silently turn weights into whole numbers'],
     ['re-save it with floating-point tensors']),
    (more.safetensors_integer_weights, CheckpointMismatchError,
     ['stages.0.0.pwconv1.weight is torch.int32', 'not floating-point'],
     ['re-export it with the weights in float32']),
    (more.safetensors_bool_weights, CheckpointMismatchError,
     ['stages.0.0.pwconv1.weight is torch.bool', 'zeros and ones'],
     ['re-export it with the weights in float32']),
    # Work dir
    (more.work_dir_holds_an_earlier_run, WorkDirInUseError,
     ['holds checkpoints of an earlier run (epoch_12.pth)', 'would overwrite'],
     ['--resume', 'another --work-dir', '--overwrite-checkpoints']),
    (more.work_dir_blocked_by_a_file, checks.WorkDirError,
     ['cannot write there', 'runs is a file, not a folder'], ['Choose another --work-dir']),
    # The data itself
    (more.annotation_json_syntax_error, DataError,
     ['instances_train2017.json:2:34: the annotation file is not valid JSON',
      'Expecting property name'], ['Fix the file at that position']),
    (more.annotation_not_coco_style, DataError,
     ['is not a COCO-style annotation file', '"images", "annotations" and "categories"'],
     ['Point ann_file at instances_*.json']),
    (more.dataset_empty, DataError, ['the dataset is empty', '"images" list has no entries'],
     ['Point ann_file at the annotations of your images']),
    (more.image_listed_but_missing, DataError,
     ['1 listed image(s) are missing', 'train2017/000001.jpg'], ['point data_root/data_prefix']),
    (more.image_corrupt, DataError,
     ['000001.jpg does not decode as an image', 'cannot identify image file'],
     ['Replace the file', 'remove it from the dataset']),
    (more.image_truncated, DataError, ['000001.jpg does not decode as an image', 'Truncated'],
     ['Replace the file']),
    (more.classes_match_no_category, DataError,
     ['1 of 4 classes match no category', "'elipse'", 'would get no objects'],
     ["did you mean 'ellipse'?", 'Spell the classes as the categories are named']),
    (more.head_num_classes_below_classes, DataError,
     ['model.roi_head.bbox_head.num_classes = 3', 'has 4 classes'],
     ['--cfg-options model.roi_head.bbox_head.num_classes=4']),
    (more.seg_dataset_empty, DataError, ['the dataset is empty: no .jpg image'],
     ['fix data_prefix.img_path / img_suffix']),
    (more.seg_label_map_missing, DataError, ['1 image(s) have no label map', '000001.png'],
     ['needs its .png label map of the same name']),
    (more.seg_head_num_classes_below_classes, DataError,
     ['model.decode_head.num_classes = 3', 'has 5 classes'],
     ['--cfg-options model.decode_head.num_classes=5']),
    # Backbone arguments, also from a config (mmengine's registry builds it)
    (more.backbone_argument_misspelt, ConvNeXtArgumentError, ["unknown argument(s) 'drop_path'"],
     ["did you mean 'drop_path_rate'?", 'fix the name in the backbone config']),
    (more.backbone_argument_misspelt_in_config, ConvNeXtArgumentError,
     ["unknown argument(s) 'out_indice'"], ["did you mean 'out_indices'?"]),
    (more.backbone_arch_from_config, ConvNeXtConfigError, ["Unknown ConvNeXt arch 'v2-tiiny'"],
     ["'v2-tiny'"]),
    (more.backbone_out_indices_from_config, ConvNeXtConfigError, ['[4] out of range'],
     ['valid indices are [-4, 3]']),
    (more.backbone_output_stride_from_config, ConvNeXtConfigError,
     ['output_stride must be one of [8, 16, 32]', 'got 4'], ['one of [8, 16, 32]']),
    # Tool options
    (more.cfg_options_not_key_value, argparse.ArgumentError,
     ["--cfg-options 'train_dataloader.batch_size'"], ['each item must be KEY=VALUE']),
    (more.partial_load_without_our_checkpoint_hook, config.HookOptionError,
     ["--partial-load needs default_hooks.checkpoint of type", "has 'CheckpointHook'"],
     ["Add default_hooks = dict(checkpoint=dict(type='convnext_backbone."]),
    # Layer decay with mmpretrain-convention backbones
    (more.layer_decay_unknown_get_layer_depth, LayerDecayConfigError,
     ['get_layer_depth(name, stage) follows neither known convention'],
     ["get_layer_depth(param_name, prefix='') (mmpretrain). Implement one of them"]),
    (more.layer_decay_everything_on_one_id, LayerDecayConfigError,
     ['every backbone parameter on layer id 3 of 8', 'would change nothing'],
     ['Check that the backbone implements its rules', 'drop the layer-decay constructor']),
]

#: Errors argparse prints (its own usage line), not our one-line printer.
NOT_A_TOOL_ERROR = {'cfg_options_not_key_value'}


@pytest.mark.parametrize('case, error, problem, fix',
                         [pytest.param(*c, id=c[0].__name__) for c in CASES])
def test_bad_input_gets_a_clear_error_naming_problem_and_fix(case, error, problem, fix,
                                                             tmp_path):
    with pytest.raises(error) as raised:
        case(tmp_path)
    line = error_line(raised.value)
    assert '\n' not in line
    for part in problem + fix:
        assert part in line, f'{part!r} not in the message:\n{line}'
    if case.__name__ not in NOT_A_TOOL_ERROR:  # our tools print it as that one line
        printed = USER_ERRORS + ((ValueError,) if case.__name__.startswith('evaluate_') else ())
        assert isinstance(raised.value, printed), type(raised.value).__mro__


def test_cases_are_distinct_and_enough():
    assert len({c[0] for c in CASES}) == len(CASES) >= 45


def test_convnext_detector_checkpoint_loads_as_backbone_weights(tmp_path):
    """What a detector checkpoint given as a backbone one does when it *is* a ConvNeXt: its
    backbone part loads (necks/heads dropped and reported), so that is not an error."""
    source = small()
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['neck.conv.weight'] = torch.zeros(2, 2)
    report = load_pretrained(small(), state, logger='silent')
    assert report.format == 'detector/official' and 'neck.conv.weight' in report.dropped
