"""mmseg 1.2 on this stack: an UperNet from mmseg's own config (SyncBN, reverted to BN outside a
distributed run) trains, checkpoints, resumes and predicts on CPU through mmengine's Runner."""
import pytest
import torch
from mmengine.runner import Runner

from convnext_backbone.checkpoint import safety

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)


def shrink_upernet(cfg, ade_root, classes, work_dir, max_iters):
    """mmseg's UperNet-R50 ADE20K config with a ResNet-18, 64-pixel crops and CPU-sized loaders."""
    num_classes = len(classes)
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.decode_head.update(in_channels=[64, 128, 256, 512], channels=32,
                                 num_classes=num_classes)
    cfg.model.auxiliary_head.update(in_channels=256, channels=16, num_classes=num_classes)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False, batch_size=2)
        # ADE20KDataset only takes subsets of the 150 ADE classes: the toy set has its own.
        loader.dataset.update(type='BaseSegDataset', data_root=str(ade_root), img_suffix='.jpg',
                              seg_map_suffix='.png', reduce_zero_label=True,
                              metainfo=dict(classes=classes))
        for step in loader.dataset.pipeline:
            if step['type'] in ('RandomResize', 'Resize'):
                step['scale'] = (128, 64)
            if step['type'] == 'RandomCrop':
                step['crop_size'] = (64, 64)
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 1
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module')
def trained(toy_root, toy_data_tool, tmp_path_factory, host_config):
    work_dir = tmp_path_factory.mktemp('upernet')
    cfg = host_config('mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py')
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'  # what the Runner must revert on CPU
    cfg = shrink_upernet(cfg, toy_root / 'ade' / 'ADEChallengeData2016',
                         toy_data_tool.TOY_ADE_CLASSES, work_dir, max_iters=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return cfg, work_dir, runner


def test_training_step_reverts_syncbn_and_writes_a_checkpoint(trained):
    cfg, work_dir, runner = trained
    assert runner.iter == 2
    assert not any('SyncBatchNorm' in type(m).__name__ for m in runner.model.modules())
    assert (work_dir / 'iter_2.pth').is_file()


def test_resume_continues_from_the_checkpoint(trained, monkeypatch):
    cfg, work_dir, _ = trained
    monkeypatch.setattr(safety, '_trusted_paths', set())
    cfg = cfg.copy()
    cfg.train_cfg.max_iters = 4
    cfg.train_cfg.val_interval = 4
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    assert (work_dir / 'iter_4.pth').is_file()


def test_predicts_with_init_model(trained, toy_root):
    from mmseg.apis import inference_model, init_model
    cfg, work_dir, _ = trained
    cfg = cfg.copy()
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.decode_head.norm_cfg = cfg.model.auxiliary_head.norm_cfg = cfg.model.backbone.norm_cfg
    model = init_model(cfg, str(work_dir / 'iter_2.pth'), device='cpu')
    images = toy_root / 'ade' / 'ADEChallengeData2016' / 'images' / 'validation'
    image = sorted(images.iterdir())[0]
    result = inference_model(model, str(image))
    assert result.pred_sem_seg.data.shape[-2:] == torch.Size(result.ori_shape)
    assert result.pred_sem_seg.data.max() < cfg.model.decode_head.num_classes
