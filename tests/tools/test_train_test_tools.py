"""tools/train.py and tools/test.py end to end on the generated toy data (tiny sizes), including
resume, evaluation, drawing, the flagship config with data-root/scale overrides, the missing
dataset message, and our config under mmdet's own training entry point."""
import re
from pathlib import Path

import pytest
from shared_runs import copy_run

from conftest import REPO, TOY_DET, TOY_SEG, run_tool, toy_det_options, toy_seg_options

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)


def train(config, work_dir, *options, extra=()):
    return run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', work_dir, *extra,
                    '--cfg-options', *options)


@pytest.fixture(scope='module')
def det_run(toy_root, trained_det_run, tmp_path_factory):
    """The shared toy Mask R-CNN run (tools/train.py, one epoch, validated: conftest), copied
    here because the resume below writes into it."""
    work_dir = copy_run(trained_det_run, tmp_path_factory.mktemp('toy_det'))
    return work_dir, toy_det_options(toy_root / 'coco')


def test_toy_detection_trains_and_validates_with_coco_metrics(det_run):
    work_dir, _ = det_run
    assert (work_dir / 'epoch_1.pth').is_file()
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log


def test_toy_detection_resumes(det_run):
    work_dir, options = det_run
    proc = train(TOY_DET, work_dir, *options, 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                 extra=['--resume'])
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert (work_dir / 'epoch_2.pth').is_file()


def test_toy_detection_test_tool_reports_ap_dumps_and_draws(det_run, tmp_path):
    work_dir, options = det_run
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()  # the toy keeps only one
    proc = run_tool(REPO / 'tools' / 'test.py', TOY_DET, checkpoint, '--work-dir',
                    tmp_path, '--out', tmp_path / 'results.pkl', '--show-dir', tmp_path / 'vis',
                    '--cfg-options', *options)
    assert re.search(r'coco/bbox_mAP: -?\d', proc.stdout + proc.stderr)
    assert (tmp_path / 'results.pkl').stat().st_size > 0
    assert len(list((tmp_path / 'vis').glob('*.jpg'))) == 2  # both toy val images drawn


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
