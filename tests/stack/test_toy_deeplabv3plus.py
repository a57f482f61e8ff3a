"""The toy DeepLabV3+ (dilated ConvNeXt at output stride 8, DepthwiseSeparableASPPHead) learns:
trained through mmengine's Runner on the toy ADE20K set generated once per test run, its
validation mIoU ends above a stated floor (the same model untrained scores far below it), and
mmseg's ``inference_model`` predicts an image file at its own size with the checkpoint the run
wrote."""
import pytest
import torch
from mmengine.runner import Runner

from convnext_backbone.cli import config

from conftest import REPO

pytestmark = pytest.mark.slow  # a real (short) training run

TOY = str(REPO / 'configs' / 'toy' / 'deeplabv3plus_convnext_toy_ade20k.py')
ITERS = 40
# The same run untrained: mIoU 2.9, aAcc 14.3 (one class everywhere). After 40 iterations of
# batch 4, seeds 0, 1, 3: mIoU 29.2, 29.8, 25.9; aAcc 75.4, 76.2, 70.1 (docs/model_zoo.md).
FLOOR_MIOU, FLOOR_AACC = 15.0, 50.0


@pytest.fixture(scope='module')
def trained(toy_root, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread mostly waits at barriers
    try:
        yield _train(toy_root, tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


def _train(toy_root, tmp_path_factory):
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    work_dir = tmp_path_factory.mktemp('toy_deeplab')
    cfg = config.load_config(TOY, {
        **{f'{loader}.dataset.data_root': str(ade)
           for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')},
        'train_dataloader.batch_size': 4, 'train_cfg.max_iters': ITERS,
        'train_cfg.val_interval': ITERS, 'default_hooks.checkpoint.interval': ITERS,
        'randomness': dict(seed=0)})
    warmup, poly = cfg.param_scheduler  # the toy's schedule, shortened: 5 warm-up iterations
    warmup.end = poly.begin = 5
    poly.end = ITERS
    cfg.work_dir = str(work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()  # validates once, at the end
    metrics = {k: runner.message_hub.get_scalar(f'val/{k}').current() for k in ('mIoU', 'aAcc')}
    return cfg, work_dir, metrics, ade


def test_toy_deeplabv3plus_learns_above_the_floor(trained):
    _, work_dir, metrics, _ = trained
    assert metrics['mIoU'] >= FLOOR_MIOU and metrics['aAcc'] >= FLOOR_AACC, metrics
    assert (work_dir / f'iter_{ITERS}.pth').is_file()


def test_predicts_an_image_file_with_inference_model(trained):
    from mmseg.apis import inference_model, init_model
    cfg, work_dir, _, ade = trained
    model = init_model(cfg, str(work_dir / f'iter_{ITERS}.pth'), device='cpu')
    image = sorted((ade / 'images' / 'validation').iterdir())[0]
    result = inference_model(model, str(image))
    assert result.pred_sem_seg.data.shape[-2:] == tuple(result.ori_shape)
    assert result.pred_sem_seg.data.max() < cfg.model.decode_head.num_classes
