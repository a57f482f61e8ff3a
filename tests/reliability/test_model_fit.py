"""The model's parts fit before it runs: the built model's backbone channels against the neck's
and the heads' in_channels / in_index, one line naming both settings and the values to write.
Built from the toy configs with one setting changed, as a user would change it (in process, on
the meta device); then once through tools/train.py."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from convnext_backbone.engine import CrashSafeCheckpointHook
from convnext_backbone.engine.model_fit import ModelFitError, check_model_fits

from conftest import REPO, run_tool

TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')
TOY_SEG = str(REPO / 'configs' / 'toy' / 'upernet_convnext_toy_ade20k.py')


@pytest.fixture(scope='module')
def toy_config():
    """Each toy config read once (reading goes through mmdet's/mmseg's base configs)."""
    return {path: Config.fromfile(path) for path in (TOY_DET, TOY_SEG)}


def build(config, loaded, **options):
    """The model of ``config`` with ``options`` merged in, built on the meta device (no weights
    allocated: the check reads what the parts state, the build is the host's own)."""
    cfg = copy.deepcopy(loaded[config])
    cfg.merge_from_dict(options)
    scope = cfg.default_scope
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with torch.device('meta'):
        return registry.build(cfg.model)


@pytest.mark.parametrize('config', [TOY_DET, TOY_SEG], ids=['detector', 'segmentor'])
def test_the_toy_models_fit(config, toy_config):
    check_model_fits(build(config, toy_config))


CASES = {
    'backbone_switched_neck_not': (
        TOY_DET, {'model.backbone.arch': 'v2-atto'},
        "model.neck.in_channels=[32, 64, 128, 256] does not fit model.backbone (arch "
        "'v2-atto', out_indices (0, 1, 2, 3)), which gives 4 outputs with channels "
        "[40, 80, 160, 320]: write model.neck.in_channels=[40, 80, 160, 320]"),
    'fewer_backbone_outputs_than_the_neck_takes': (
        TOY_DET, {'model.backbone.out_indices': [1, 2, 3]},
        'write model.neck.in_channels=[64, 128, 256]'),
    'rpn_head_wider_than_the_neck': (
        TOY_DET, {'model.rpn_head.in_channels': 128},
        'model.rpn_head.in_channels=128 does not fit model.neck, whose outputs have 64 '
        'channels: write model.rpn_head.in_channels=64'),
    'roi_extractor_not_the_necks_width': (
        TOY_DET, {'model.roi_head.bbox_roi_extractor.out_channels': 256,
                  'model.roi_head.bbox_head.in_channels': 256},
        'model.roi_head.bbox_roi_extractor.out_channels=256 does not fit model.neck'),
    'decode_head_of_the_old_backbone': (
        TOY_SEG, {'model.backbone.arch': 'v1-tiny'},
        'model.decode_head.in_channels=[32, 64, 128, 256] (in_index=[0, 1, 2, 3]) does not '
        "fit model.backbone (arch 'v1-tiny', out_indices (0, 1, 2, 3)), whose outputs "
        '[0, 1, 2, 3] have channels [96, 192, 384, 768]: write '
        'model.decode_head.in_channels=[96, 192, 384, 768]'),
    'auxiliary_head_on_another_stage': (
        TOY_SEG, {'model.auxiliary_head.in_index': 3},
        'model.auxiliary_head.in_channels=128 (in_index=3) does not fit model.backbone '
        "(channels [32, 64, 128, 256], out_indices (0, 1, 2, 3)), whose outputs 3 have channels "
        '256: write model.auxiliary_head.in_channels=256'),
    'auxiliary_head_index_beyond_the_outputs': (
        TOY_SEG, {'model.backbone.out_indices': [0, 1, 2], 'model.decode_head.in_index': [0, 1, 2],
                  'model.decode_head.in_channels': [32, 64, 128],
                  'model.auxiliary_head.in_index': 3},
        'model.auxiliary_head.in_index=3 names output 3, but model.backbone'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_parts_that_do_not_fit_are_one_line_naming_both_settings(case, toy_config):
    config, options, message = CASES[case]
    model = build(config, toy_config, **options)
    with pytest.raises(ModelFitError) as raised:
        check_model_fits(model)
    assert message in str(raised.value) and '\n' not in str(raised.value)


def test_the_checkpoint_hook_checks_before_the_run_for_the_hosts_tools(toy_config):
    """mmdet's/mmseg's own tools build mmengine's Runner; our configs name the hook."""
    class Runner:
        model = build(TOY_SEG, toy_config, **{'model.backbone.arch': 'v1-tiny'})
    with pytest.raises(ModelFitError, match='model.decode_head.in_channels'):
        CrashSafeCheckpointHook().before_run(Runner())


@pytest.mark.slow  # the tool in a subprocess
def test_tools_train_refuses_the_model_before_anything_runs_and_leaves_the_work_dir(
        tmp_path, toy_root):
    """The README's example (the backbone switched to v1-tiny, the neck not): one line after a
    short startup log (the ~680-line config dump goes to the log file, not the terminal), and
    the work dir as it was (no timestamped log folder, no config dump)."""
    (tmp_path / 'notes.txt').write_text('mine')
    proc = run_tool(REPO / 'tools' / 'train.py', TOY_DET, '--work-dir', tmp_path, '--cfg-options',
                    'model.backbone.arch=v1-tiny',
                    f'train_dataloader.dataset.data_root={toy_root}/coco/',
                    f'val_dataloader.dataset.data_root={toy_root}/coco/',
                    f'val_evaluator.ann_file={toy_root}/coco/annotations/instances_val2017.json',
                    check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: model.neck.in_channels=[32, 64, 128, 256] does not fit '
                           "model.backbone (arch 'v1-tiny'"), last
    assert 'write model.neck.in_channels=[96, 192, 384, 768]' in last
    assert 'Traceback' not in proc.stderr
    assert 'Config:\n' not in proc.stdout and 'train_pipeline' not in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']
