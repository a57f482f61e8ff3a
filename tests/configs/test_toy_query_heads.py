"""The toy Mask2Former (instance and panoptic) and the toy DINO learn: each trains through
mmengine's Runner (the toy config's own pipeline, optimizer constructor and evaluator) on a
generated toy COCO set of 64x64 images, then scores above a floor on its validation images that
the same model before training (validated by the same run before its first iteration: the
initial weights) stays far below.

The floors are about half of what the toys reached when measured (TOYS: 2 cores of an AMD EPYC,
AVX2, 2026-12-07, seed 0); untrained, each scored 0.001 or less. The panoptic toy needs
``panopticapi`` (mmdet reads panoptic PNGs and computes PQ with it; it is not on PyPI) and is
skipped without it.
"""
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from conftest import REPO, run_tool

pytestmark = pytest.mark.slow  # trainings (70-100 s each on 2 shared cores)

# config -> (metric, floor, measured untrained, measured after the toy's 40 iterations)
TOYS = {
    'mask2former_convnext_toy_coco': ('coco/segm_mAP', 0.04, 0.0, 0.086),
    'mask2former_convnext_toy_coco_panoptic': ('coco_panoptic/PQ', 14.0, 0.0, 28.8),
    'dino_convnext_toy_coco': ('coco/bbox_mAP', 0.02, 0.001, 0.042),
}


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    """48 train / 16 val images of 64x64 with instance and panoptic annotations."""
    root = tmp_path_factory.mktemp('toy_query_heads')
    run_tool(REPO / 'tools' / 'make_toy_data.py', '--root', root, '--only', 'coco', '--panoptic',
             '--num-train', 48, '--num-val', 16, '--size', 64)
    return root / 'coco'


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """One thread: on the shared cores two threads of these tiny models mostly wait at barriers
    (seen: 14 s an iteration with two threads under load, 1.1 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class KeepMetrics(Hook):
    """Validates once before the first iteration (the initial weights, as the Runner
    initialised them) and keeps what every validation computed (the evaluator's own metrics).
    The random states are put back after that first validation, so the training that follows
    is the one a run without it would do."""

    def __init__(self):
        self.metrics = []

    def before_train(self, runner):
        states = torch.get_rng_state(), np.random.get_state(), random.getstate()
        runner.val_loop.run()
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append(dict(metrics or {}))


def train_and_validate(name, coco, work_dir):
    """Train the toy config; returns its val metrics before the first and after the last
    iteration."""
    cfg = Config.fromfile(REPO / 'configs' / 'toy' / f'{name}.py')
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = f'{coco}/'
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    for evaluator in evaluators:
        for key in ('ann_file', 'seg_prefix'):
            if key in evaluator:
                evaluator[key] = evaluator[key].replace(cfg.data_root, f'{coco}/')
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    keep = KeepMetrics()
    runner.register_hook(keep, 'LOWEST')
    runner.train()
    assert len(keep.metrics) == 2, keep.metrics  # before training, and at its end
    return keep.metrics[0], keep.metrics[-1]


@pytest.mark.parametrize('name', sorted(TOYS))
def test_toy_learns(name, toy_coco, tmp_path):
    if 'panoptic' in name:
        pytest.importorskip('panopticapi', reason="mmdet's LoadPanopticAnnotations needs "
                            'panopticapi, which is not on PyPI')
    metric, floor, _, _ = TOYS[name]
    before, after = train_and_validate(name, toy_coco, tmp_path)
    untrained, trained = before[metric], after[metric]
    print(f'{name}: {metric} untrained {untrained:.3f}, trained {trained:.3f}')
    assert untrained < floor / 2, untrained
    assert trained > floor, trained
