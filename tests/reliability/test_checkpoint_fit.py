"""A ``load_from`` checkpoint that does not fit the model stops the run (training and testing)
with one message, instead of mmengine's non-strict load: a hundred "size mismatch" log lines,
then training from random weights or testing them (AP 0.000), exit status 0. Small models in a
real mmengine Runner (the same hook calls as under mmdet/mmseg); the last test runs
tools/test.py end to end on the toy Mask R-CNN."""
import logging

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel, BaseTTAModel
from mmengine.runner import Runner

import convnext_backbone  # noqa: F401  (registers the hook)
from convnext_backbone.checkpoint import CheckpointMismatchError

from conftest import REPO, run_tool

OURS = 'convnext_backbone.CrashSafeCheckpointHook'


class Net(BaseModel):
    """A 'backbone' and a 'head' whose widths stand for arch and num_classes."""

    def __init__(self, width=8, classes=3):
        super().__init__()
        self.backbone = torch.nn.Linear(4, width)
        self.head = torch.nn.Linear(width, classes)

    def forward(self, inputs, targets=None, mode='loss'):
        out = self.head(self.backbone(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return [dict(score=float(o.sum())) for o in out]


class Mean(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [s['score'] for s in data_samples]

    def compute_metrics(self, results):
        return dict(score=sum(results) / len(results))


def runner(work_dir, model, load_from, hook=OURS, **hook_args):
    data = [dict(inputs=torch.ones(4) * i) for i in range(2)]
    loader = dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                  batch_size=2, num_workers=0)
    return Runner(
        model=model, work_dir=str(work_dir), load_from=str(load_from),
        train_dataloader=loader, test_dataloader=loader, test_cfg=dict(),
        test_evaluator=Mean(), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type=hook, interval=1, **hook_args), logger=None))


def logged(run) -> list:
    """The messages ``run``'s logger (mmengine's current logger) will get."""
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    run.logger.addHandler(handler)
    return messages


def save(tmp_path, model, name='other.pth'):
    path = tmp_path / name
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.mark.slow  # a Runner training (about 5 s)
def test_stock_load_from_of_another_arch_trains_from_random_weights_silently(tmp_path):
    """The silent case as mmengine has it (why the check exists)."""
    path = save(tmp_path, Net(width=16))
    run = runner(tmp_path / 'run', Net(), path, hook='CheckpointHook')
    run.train()  # no error: the backbone stayed random
    assert (tmp_path / 'run' / 'epoch_1.pth').exists()


def test_load_from_of_another_arch_stops_training_before_it_starts(tmp_path):
    path = save(tmp_path, Net(width=16))
    with pytest.raises(CheckpointMismatchError, match=r'other\.pth does not fit the model.*'
                       r'backbone\.weight \[16, 4\] vs model \[8, 4\].*--partial-load'):
        runner(tmp_path / 'run', Net(), path).train()
    assert not (tmp_path / 'run' / 'epoch_1.pth').exists()


def test_testing_with_another_num_classes_fails_instead_of_scoring_random_weights(tmp_path):
    path = save(tmp_path, Net(classes=80))
    with pytest.raises(CheckpointMismatchError, match=r'head\.weight \[80, 8\] vs model \[3, 8\]'):
        runner(tmp_path / 'run', Net(), path).test()


def test_matching_checkpoint_loads_exactly(tmp_path):
    source = Net()
    model = Net()
    runner(tmp_path / 'run', model, save(tmp_path, source)).test()
    assert torch.equal(model.backbone.weight, source.backbone.weight)


class TTA(BaseTTAModel):
    """A test-time augmentation wrapper (what ``tools/test.py --tta`` tests): the checkpoint
    holds the wrapped model's weights, without the wrapper's ``module.`` prefix."""

    def merge_preds(self, data_samples_list):
        return [samples[0] for samples in data_samples_list]


def test_checkpoint_of_the_model_loads_into_its_tta_wrapper(tmp_path):
    source = Net()
    model = Net()
    run = runner(tmp_path / 'run', TTA(module=model), save(tmp_path, source))
    run._test_dataloader.update(dataset=[dict(inputs=[torch.ones(4) * i] * 2) for i in range(2)])
    run.test()  # two views of each sample
    assert torch.equal(model.backbone.weight, source.backbone.weight)
    with pytest.raises(CheckpointMismatchError, match=r'head\.weight \[80, 8\] vs model \[3, 8\]'):
        runner(tmp_path / 'other', TTA(module=Net()), save(tmp_path, Net(classes=80))).test()


def test_partial_load_keeps_what_fits_and_reports_what_stays_fresh(tmp_path):
    source = Net(classes=80)
    model = Net()
    fresh_head = model.head.weight.detach().clone()
    run = runner(tmp_path / 'run', model, save(tmp_path, source), partial_load=True)
    messages = logged(run)
    run.train()
    assert torch.equal(model.backbone.weight, source.backbone.weight)  # lr 0: as loaded
    assert torch.equal(model.head.weight, fresh_head)
    out = '\n'.join(messages)
    assert 'Partial load of load_from' in out
    assert '2 keep their fresh initialisation (they do not fit: head.* (2))' in out


def test_fp16_checkpoint_loads_and_the_dtype_change_is_reported(tmp_path):
    source = Net().half()
    model = Net()
    run = runner(tmp_path / 'run', model, save(tmp_path, source))
    messages = logged(run)
    run.test()
    assert torch.equal(model.backbone.weight, source.backbone.weight.float())
    out = '\n'.join(messages)
    assert '4 tensors are torch.float16 in the checkpoint and torch.float32 in the model' in out


def test_integer_checkpoint_is_refused(tmp_path):
    source = {k: v.to(torch.int32) for k, v in Net().state_dict().items()}
    path = tmp_path / 'cast.pth'
    torch.save({'state_dict': source}, path)
    with pytest.raises(CheckpointMismatchError, match='torch.int32 values where the model has'):
        runner(tmp_path / 'run', Net(), path, partial_load=True).test()


@pytest.mark.slow
def test_tools_test_with_a_detector_of_another_arch_is_one_error_line(tmp_path, toy_root):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    config = REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py'
    cfg = Config.fromfile(config)
    cfg.model.backbone.arch = dict(depths=[1, 1, 2, 1], channels=[16, 32, 64, 128])
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    with DefaultScope.overwrite_default_scope('mmdet'):
        other = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'other_arch.pth'
    torch.save({'state_dict': other.state_dict(), 'meta': {}}, checkpoint)
    proc = run_tool(REPO / 'tools' / 'test.py', config, checkpoint, '--work-dir', tmp_path / 'w',
                    '--cfg-options', f'test_dataloader.dataset.data_root={toy_root}/coco/',
                    f'test_evaluator.ann_file={toy_root}/coco/annotations/instances_val2017.json',
                    check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: load_from ') and 'does not fit the model' in last
    assert 'channels [16, 32, 64, 128]' in last and '--partial-load' in last
    assert 'Traceback' not in proc.stderr
