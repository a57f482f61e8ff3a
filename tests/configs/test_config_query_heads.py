"""The Mask2Former and DINO configs train one step and predict on CPU: the configs' full-width
models on two synthetic images, sizes not multiples of 32 (64x72; DINO 200x232, as it selects its
900 queries from the encoder's tokens and needs at least that many: an image of 64x72 gives
100), their own optimizer constructor.

Only CPU-sized settings change: Mask2Former's fixed-size batch padding (1024x1024 in the COCO
recipes) and mmseg's crop padding (512 / 640) pad to 64x96 instead, and 1024 sampled points per
mask instead of 12544.
"""
import re

import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper

from config_helpers import build, load, shipped_configs

CONFIGS = [c for c in shipped_configs() if '/mask2former/' in c or '/dino/' in c]
PAD = (64, 96)
# Host tensors whose first-step gradient is zero from the host's own init: DINO's box MLPs up to
# their zero-initialised last layer, the level embeddings (here, and Mask2Former's) at init.
ZERO_AT_INIT = re.compile(r'level_embed|level_encoding|bbox_head\.reg_branches\.\d+\.[02]\.')


def image_size(cfg):
    return (200, 232) if cfg.model.type == 'DINO' else (64, 72)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny inputs: one thread is faster than two on the shared cores (see test_config_training)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cpu_sized(cfg):
    model = cfg.model
    for augment in model.data_preprocessor.get('batch_augments') or []:
        augment.size = PAD
    if cfg.default_scope == 'mmseg':
        model.data_preprocessor.size = PAD
        model.decode_head.train_cfg.num_points = 1024
    elif 'panoptic_head' in model:
        model.train_cfg.num_points = 1024
    return cfg


def synthetic_batch(cfg):
    H, W = image_size(cfg)
    torch.manual_seed(0)
    if cfg.default_scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        panoptic = cfg.model.get('panoptic_head', {}).get('num_stuff_classes', 0) > 0
        num_classes = 133 if panoptic else 80
        data = demo_mm_inputs(2, [[3, H, W]] * 2, num_items=[2, 3], num_classes=num_classes,
                              with_mask=True, with_semantic=panoptic)
        if panoptic:  # demo_mm_inputs draws semantic maps of its own size and classes
            for sample in data['data_samples']:
                sample.gt_sem_seg.sem_seg = torch.randint(0, 133, (1, H, W))
        return data
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, H, W), generator=gen))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, H, W), generator=gen, dtype=torch.uint8)
              for _ in samples]
    return dict(inputs=inputs, data_samples=samples)


# 13-60 s each on the shared 2 cores: one in the fast suite, the others slow.
@pytest.mark.parametrize('path', [c if c.endswith('mask2former_convnext_t_50e_coco.py') else
                                  pytest.param(c, marks=pytest.mark.slow) for c in CONFIGS])
def test_one_training_step_and_a_prediction(path):
    torch.manual_seed(0)  # the weights and drop path's draws: not whatever ran before
    cfg = cpu_sized(load(path))
    model = revert_sync_batchnorm(build(cfg))
    model.init_weights()  # as the Runner does: DINO's head starts from its focal-loss prior
    optim_cfg = cfg.optim_wrapper.copy()
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    data = synthetic_batch(cfg)
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    grads = {}

    def record_gradients(optimizer, args, kwargs):  # after clipping, before the update
        grads.update({n: p.grad if p.grad is None else p.grad.clone() for n, p in params.items()})

    optim_wrapper.optimizer.register_step_pre_hook(record_gradients)
    model.train()
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert grads, 'the optimizer did not step'
    # Every parameter gets a finite gradient; an all-zero one only where drop path dropped a
    # whole backbone block for both images (then none of that block's tensors gets any).
    assert [n for n, g in grads.items() if g is None or not torch.isfinite(g).all()] == []
    zero = [n for n, g in grads.items() if not g.any()]
    dropped = {'.'.join(n.split('.')[:4]) for n in zero if n.startswith('backbone.stages.')}
    for block in dropped:
        assert getattr(model.get_submodule(block).drop_path, 'drop_prob', 0) > 0, block
        assert all(not g.any() for n, g in grads.items() if n.startswith(block + '.')), block
    assert [n for n in zero if not n.startswith('backbone.stages.')
            and not ZERO_AT_INIT.search(n)] == [], zero
    # The step moves the backbone from its stem on, the neck / pixel decoder, the transformer
    # and the queries.
    stale = [n for n, p in params.items() if torch.equal(p, before[n]) and n not in zero]
    assert stale == [], stale
    assert any(n for n in params if n not in zero and 'query' in n)
    model.eval()
    with torch.no_grad():
        predictions = model.test_step(data)
    assert len(predictions) == 2
    H, W = image_size(cfg)
    for pred in predictions:
        if cfg.default_scope == 'mmseg':
            seg = pred.pred_sem_seg.data
            assert seg.shape == (1, H, W) and 0 <= int(seg.min()) <= int(seg.max()) < 150
            continue
        inst = pred.pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst.scores) == len(inst.bboxes) > 0
        if 'panoptic_head' in cfg.model:
            assert inst.masks.shape[1:] == (H, W)
        if cfg.model.get('test_cfg', {}).get('panoptic_on'):
            assert pred.pred_panoptic_seg.sem_seg.shape == (1, H, W)
