"""Where a tool's run is: still starting up, or training / validating / testing at which
iteration. Our tools run one Runner per process, so this is one record per process
(:data:`PROGRESS`), kept up to date by :class:`ProgressHook` (our tools' Runner registers it).

What reads it:

* the work-dir claim (``work_dir.claim_work_dir``): a run that fails before its first iteration
  leaves the work dir as it was;
* the tools' entry point (``entry.run_tool``): the line printed on Ctrl-C names the iteration
  and the last complete checkpoint, and the traceback of a failure after the start goes into
  the run's log file.
"""
import os.path as osp
from dataclasses import dataclass
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from ..checkpoint.files import find_latest_checkpoint


@dataclass
class RunProgress:
    """``phase``: 'startup' until the first iteration of any loop begins, then 'train', 'val' or
    'test'. ``tool``: 'train' or 'test' (None: a tool without a Runner). ``iteration``: the
    1-based training iteration running (or last run); ``epoch``: its 1-based epoch for
    epoch-based training, else None; ``batch``/``batches``: the evaluation batch and the
    loader's length."""
    phase: str = 'startup'
    tool: Optional[str] = None
    iteration: int = 0
    epoch: Optional[int] = None
    batch: int = 0
    batches: Optional[int] = None
    work_dir: Optional[str] = None
    log_file: Optional[str] = None

    @property
    def started(self) -> bool:
        return self.phase != 'startup'


PROGRESS = RunProgress()


def reset(tool: Optional[str], work_dir: Optional[str] = None) -> RunProgress:
    """A new run of ``tool`` ('train', 'test'; None: no run) starts in this process."""
    global PROGRESS
    PROGRESS = RunProgress(tool=tool, work_dir=work_dir)
    return PROGRESS


def current() -> RunProgress:
    return PROGRESS


def interrupted_line() -> str:
    """What Ctrl-C interrupted and what to do now, as one line (no ``error:`` prefix)."""
    run = PROGRESS
    if run.tool is None:  # a tool that runs no Runner (export, get_flops, benchmarks)
        return 'interrupted (Ctrl-C)'
    if not run.started:
        what = 'training' if run.tool == 'train' else 'the run'
        return (f'interrupted (Ctrl-C) before {what} started; the work dir is left as it was'
                if run.work_dir else f'interrupted (Ctrl-C) before {what} started')
    if run.phase == 'test':
        return (f'interrupted (Ctrl-C) during evaluation at batch {run.batch}'
                f'{f" of {run.batches}" if run.batches else ""}; no results were written: run '
                'the command again')
    where = f'iteration {run.iteration}' + (f' (epoch {run.epoch})' if run.epoch else '')
    doing = f'while validating after {where}' if run.phase == 'val' else f'at {where}'
    latest = find_latest_checkpoint(run.work_dir, quiet=True) if run.work_dir else None
    if latest:
        then = (f'the last complete checkpoint is {latest}; resume with the same command and '
                '--resume')
    else:
        then = 'no checkpoint was written yet: run the same command again to start afresh'
    return f'interrupted (Ctrl-C) {doing}; {then}'


class ProgressHook(Hook):
    """Keeps :data:`PROGRESS` up to date (not a config component: our tools register it)."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        PROGRESS.phase = 'train'
        PROGRESS.iteration = runner.iter + 1
        by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        PROGRESS.epoch = runner.epoch + 1 if by_epoch else None

    def before_val_iter(self, runner, batch_idx, data_batch=None) -> None:
        PROGRESS.phase = 'val'

    def after_val_epoch(self, runner, metrics=None) -> None:
        if PROGRESS.phase == 'val':
            PROGRESS.phase = 'train'

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        PROGRESS.phase = 'test'
        PROGRESS.batch = batch_idx + 1
        try:
            PROGRESS.batches = len(runner.test_dataloader)
        except TypeError:
            PROGRESS.batches = None


def log_file_of(runner) -> Optional[str]:
    """The file the Runner's logger writes to, if any."""
    for handler in getattr(runner.logger, 'handlers', ()):
        name = getattr(handler, 'baseFilename', None)
        if name and osp.isfile(name):
            return name
    return None
