"""mmdet 3.3 on this stack: a Mask R-CNN from mmdet's own config trains, checkpoints, resumes and
predicts on CPU through mmengine's Runner (the checkpoint is read back through the package's safe
loader)."""
import json

import pytest
import torch
from mmengine.runner import Runner

from convnext_backbone.checkpoint import safety

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)


def shrink_maskrcnn(cfg, coco_root, work_dir, max_epochs):
    """mmdet's Mask R-CNN 1x config with a ResNet-18, 64-pixel toy images and CPU-sized loaders."""
    classes = tuple(c['name'] for c in json.loads(
        (coco_root / 'annotations' / 'instances_val2017.json').read_text())['categories'])
    cfg.model.backbone = dict(type='ResNet', depth=18, norm_cfg=dict(type='BN'), init_cfg=None)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    cfg.model.roi_head.bbox_head.num_classes = len(classes)
    cfg.model.roi_head.mask_head.num_classes = len(classes)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=str(coco_root), metainfo=dict(classes=classes))
        for step in loader.dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (64, 64)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        evaluator.ann_file = str(coco_root / 'annotations' / 'instances_val2017.json')
    # no validation: mmdet's full-width mask head on 100 random detections per image is most of
    # a run's time; prediction is tested through init_detector below
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                         val_interval=max_epochs + 1)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module')
def trained(toy_root, tmp_path_factory, host_config):
    work_dir = tmp_path_factory.mktemp('maskrcnn')
    cfg = shrink_maskrcnn(host_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
                          toy_root / 'coco', work_dir, max_epochs=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return cfg, work_dir, runner


def test_training_step_writes_a_checkpoint(trained):
    cfg, work_dir, runner = trained
    assert runner.iter == 2  # 4 images, batch 2, one epoch
    assert (work_dir / 'epoch_1.pth').is_file()


def test_resume_continues_from_the_checkpoint(trained, monkeypatch):
    cfg, work_dir, _ = trained
    # A fresh process would not have seen the save: forget it, so the safe path alone must read it.
    monkeypatch.setattr(safety, '_trusted_paths', set())
    cfg = cfg.copy()
    cfg.train_cfg.max_epochs = 2
    cfg.train_cfg.val_interval = 3
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4 and runner.epoch == 2
    assert (work_dir / 'epoch_2.pth').is_file()


def test_predicts_with_init_detector(trained, toy_root):
    from mmdet.apis import inference_detector, init_detector
    cfg, work_dir, _ = trained
    model = init_detector(cfg, str(work_dir / 'epoch_1.pth'), device='cpu')
    image = sorted((toy_root / 'coco' / 'val2017').iterdir())[0]
    result = inference_detector(model, str(image))
    pred = result.pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.bboxes)
    assert pred.masks.shape[-2:] == torch.Size(result.ori_shape)
