"""tools/train.py and tools/test.py end to end on the generated toy data (tiny sizes), including
resume, evaluation, drawing, the flagship config with data-root/scale overrides, the missing
dataset message, and our config under mmdet's own training entry point."""
import re
from pathlib import Path

import pytest
from doc_commands import doc_argv, project_folder
from shared_runs import copy_run

from conftest import REPO, TOY_DET, TOY_SEG, run_tool, toy_det_options, toy_seg_options

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)


def train(config, work_dir, *options, extra=()):
    return run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', work_dir, *extra,
                    '--cfg-options', *options)


# docs/reliability.md: interrupted training goes on with the same command and --resume
RESUME = 'python tools/train.py CONFIG --work-dir work_dirs/run --resume'
# docs/evaluation.md: single-scale and multi-scale + flip evaluation
EVALUATE = 'python tools/test.py CONFIG CHECKPOINT'
EVALUATE_TTA = 'python tools/test.py CONFIG CHECKPOINT --tta'


@pytest.fixture(scope='module')
def det_run(toy_root, trained_det_run, tmp_path_factory):
    """The shared toy detector run (tools/train.py, one epoch, validated: conftest), copied into
    work_dirs/run of a project folder: the resume below writes into it."""
    work_dir = project_folder(tmp_path_factory.mktemp('toy_det'), toy_root) / 'work_dirs' / 'run'
    copy_run(trained_det_run, work_dir)
    return work_dir, toy_det_options(toy_root / 'coco')


def test_toy_detection_trains_and_validates_with_coco_metrics(det_run):
    work_dir, _ = det_run
    assert (work_dir / 'epoch_1.pth').is_file()
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log


def test_toy_detection_resumes(det_run):
    """The docs' resume command as written, in the project folder, with a longer schedule."""
    work_dir, options = det_run
    python, *command = doc_argv(RESUME, CONFIG=TOY_DET)
    proc = run_tool(*command, '--cfg-options', *options, 'train_cfg.max_epochs=2',
                    'train_cfg.val_interval=2', cwd=work_dir.parent.parent)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert (work_dir / 'epoch_2.pth').is_file()


def test_toy_detection_test_tool_reports_ap_dumps_and_draws(det_run, tmp_path):
    work_dir, options = det_run
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()  # the toy keeps only one
    python, *command = doc_argv(EVALUATE, CONFIG=TOY_DET, CHECKPOINT=checkpoint)
    proc = run_tool(*command, '--work-dir', tmp_path, '--out', tmp_path / 'results.pkl',
                    '--show-dir', 'vis', '--cfg-options', *options)
    assert re.search(r'coco/bbox_mAP: -?\d', proc.stdout + proc.stderr)
    assert (tmp_path / 'results.pkl').stat().st_size > 0
    # a relative --show-dir under the run's timestamped log folder, as with mmdet's own tool
    drawn = list(tmp_path.glob('*/vis/*.jpg'))
    assert len(drawn) == 2 and drawn[0].parent.parent.name[:8].isdigit()  # both val images
    assert any(drawn[0].parent.parent.glob('*.log'))  # the run's own log folder


def test_toy_segmentation_trains_resumes_and_reports_miou(toy_root, trained_seg_run,
                                                         tmp_path):
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    options = toy_seg_options(ade)
    # the shared run trained 2 iterations and validated (conftest); resumed here in a copy
    assert (trained_seg_run / 'iter_2.pth').is_file()
    assert 'mIoU' in next(trained_seg_run.glob('*/*.log')).read_text()
    copy_run(trained_seg_run, tmp_path)
    proc = train(TOY_SEG, tmp_path, *options, 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                 'default_hooks.checkpoint.interval=3', extra=['--resume'])
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    assert 'mIoU' in proc.stdout + proc.stderr
    proc = run_tool(REPO / 'tools' / 'test.py', TOY_SEG, tmp_path / 'iter_3.pth', '--work-dir',
                    tmp_path / 'test', '--cfg-options', *options)
    assert re.search(r'mIoU: \d', proc.stdout + proc.stderr)


def test_toy_segmentation_multi_scale_flip_test(toy_root, trained_seg_run, tmp_path):
    """--tta: the config's multi-scale + flip test (whole images, as the paper's) on a trained
    checkpoint, which loads into the test-time wrapper."""
    python, *command = doc_argv(EVALUATE_TTA, CONFIG=TOY_SEG,
                                CHECKPOINT=trained_seg_run / 'iter_2.pth')
    proc = run_tool(*command, '--work-dir', tmp_path, '--cfg-options',
                    *toy_seg_options(toy_root / 'ade' / 'ADEChallengeData2016'))
    out = proc.stdout + proc.stderr
    assert re.search(r'mIoU: \d', out)
    # the run's config (in its log): the test-time wrapper and the multi-scale + flip pipeline
    log = next(tmp_path.glob('*/*.log')).read_text()
    assert "type='convnext_backbone.TTAWithTestCfg'" in log and "type='TestTimeAug'" in log


def test_flagship_config_trains_two_iterations_with_only_data_and_scale_overrides(toy_root,
                                                                                  tmp_path):
    """configs/maskrcnn_convnext_t_coco.py itself (pipeline, constructor, hooks, evaluator) with
    only the data overridden: root, classes, image scales; its AMP falls back to fp32 on CPU."""
    coco = toy_root / 'coco'
    small = '[(64,107)]'
    pipeline = 'train_dataloader.dataset.pipeline.3.transforms'
    options = [*toy_det_options(coco), f'{pipeline}.0.0.scales={small}',
               f'{pipeline}.1.0.scales={small}', f'{pipeline}.1.1.crop_size=(48,64)',
               f'{pipeline}.1.2.scales={small}',
               'test_dataloader.dataset.pipeline.1.scale=(64,107)',
               'val_dataloader.dataset.pipeline.1.scale=(64,107)',
               'train_dataloader.dataset.metainfo.classes=[rectangle,ellipse,triangle,star]',
               'val_dataloader.dataset.metainfo.classes=[rectangle,ellipse,triangle,star]',
               # the dataset's 4 classes (with COCO's 80, predicted labels >= 4 break CocoMetric)
               'model.roi_head.bbox_head.num_classes=4', 'model.roi_head.mask_head.num_classes=4',
               'model.backbone.init_cfg=None', 'train_cfg.max_epochs=1']
    proc = train('configs/maskrcnn_convnext_t_coco.py', tmp_path, *options)
    out = proc.stdout + proc.stderr
    assert 'runs in fp32 with OptimWrapper' in out  # the AMP config's CPU fallback
    assert 'LayerDecayOptimWrapperConstructor: layer_wise decay_rate=0.95, 8 layer ids' in out
    assert 'Epoch(train) [1][2/2]' in out
    assert (tmp_path / 'epoch_1.pth').is_file()


def test_missing_dataset_is_a_clear_message(tmp_path):
    proc = run_tool(REPO / 'tools' / 'train.py', REPO / 'configs' / 'maskrcnn_convnext_t_coco.py',
                    '--work-dir', tmp_path, check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'COCO 2017 not found' in proc.stderr and 'cocodataset.org' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_our_config_runs_under_mmdets_own_train_tool(toy_root, tmp_path):
    import mmdet
    mmdet_train = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    proc = run_tool(mmdet_train, REPO / TOY_DET, '--work-dir', tmp_path, '--cfg-options',
                    *toy_det_options(toy_root / 'coco'), 'train_cfg.max_epochs=1',
                    'train_cfg.val_interval=2')
    assert 'LayerDecayOptimWrapperConstructor' in proc.stdout + proc.stderr
    assert (tmp_path / 'epoch_1.pth').is_file()


# README.md, "Use it from your own project": a config of one's own that inherits a shipped one
# by package name, trained and tested from a clone (where mim does not find the package)
CLONE_TRAIN = 'python tools/train.py my_config.py --work-dir work_dirs/mine'
CLONE_TEST = 'python tools/test.py my_config.py CHECKPOINT'
OWN_CONFIG = '''_base_ = ['convnext_backbone::toy/maskrcnn_convnext_toy_coco.py']
data_root = '{coco}/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=2)  # 4 images, batch 2: two iterations
'''


def test_an_own_config_inheriting_by_package_name_trains_and_tests_in_a_clone(toy_root,
                                                                               tmp_path):
    clone = project_folder(tmp_path)
    (clone / 'my_config.py').write_text(OWN_CONFIG.format(coco=toy_root / 'coco'))
    python, *command = doc_argv(CLONE_TRAIN)
    run_tool(*command, cwd=clone)
    checkpoint = (clone / 'work_dirs' / 'mine' / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).name == 'epoch_1.pth'
    python, *command = doc_argv(CLONE_TEST, CHECKPOINT=checkpoint)
    proc = run_tool(*command, cwd=clone)
    out = proc.stdout + proc.stderr
    assert re.search(r'coco/bbox_mAP: -?\d', out) and re.search(r'coco/segm_mAP: -?\d', out)
