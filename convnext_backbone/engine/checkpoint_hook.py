"""``CrashSafeCheckpointHook``: mmengine's CheckpointHook whose checkpoints survive a kill.

A run killed (SIGKILL, the OOM killer, preemption, power loss) while mmengine's own hook saves
can lose what it had: the file is written in place (a kill leaves a truncated file under the final
name), the oldest checkpoint is removed *before* the new one is written (with
``max_keep_ckpts=1`` a kill mid-write leaves no complete checkpoint at all), and
``last_checkpoint``, the file ``resume=True`` reads, is rewritten in place. This hook, for local
work dirs:

* writes each checkpoint to a temporary file beside it, syncs it and renames it over the final
  name (atomic), then writes ``last_checkpoint`` the same way, and only then removes outdated
  checkpoints; leftovers of a killed save are removed by the next save of that name;
* on ``resume=True`` without a path, resumes from the file ``last_checkpoint`` names when it is
  complete, and otherwise (with a warning) from the newest complete ``epoch_N.pth`` /
  ``iter_N.pth`` of the work dir, so an empty or stale ``last_checkpoint`` never restarts a run
  from scratch;
* turns a save that the disk refuses (full, quota, file size limit, read-only, permissions)
  into one :class:`~convnext_backbone.checkpoint.write_errors.CheckpointWriteError` naming the
  cause, the intact earlier checkpoint and ``--resume``;
* trusts what it wrote for this process (see ``convnext_backbone.checkpoint.safety``);
* checks a ``load_from`` checkpoint against the model (keys, shapes, dtypes) when mmengine has
  read it and before it is copied (``after_load_checkpoint``): a checkpoint that does not fit is
  one :class:`~convnext_backbone.checkpoint.CheckpointMismatchError` instead of mmengine's
  non-strict load (training from random weights, or testing them, with exit status 0);
  ``partial_load=True`` keeps what fits and logs what stays fresh (fine-tuning on another
  dataset); ``tools/train.py --partial-load`` sets it; a checkpoint that fits is one log line
  saying so, with what its ``meta`` says (writer and version, classes);
* refuses to start a fresh run (no resume) in a folder holding checkpoints of an earlier run,
  which it would overwrite (and point ``last_checkpoint`` at): :class:`WorkDirInUseError` names
  ``--resume``, another ``--work-dir`` and ``overwrite=True`` (``tools/train.py
  --overwrite-checkpoints``).
* says so in one warning at the end of the startup when a resume was asked for
  (``--resume``, ``resume=True``) and the work dir holds nothing to resume from: the run starts
  from iteration 0 (mmengine's only sign is an INFO line among hundreds);
* checks that the model's parts fit (``engine.model_fit``: backbone channels against the
  neck's and heads' ``in_channels``) before the run, also under mmdet's and mmseg's own tools.

Remote backends (``s3://``, path mappings) and the ``save_best`` copies keep mmengine's behaviour.
It is a config choice, not a patch: our configs' base runtimes name it, so our tools and
mmdet's/mmseg's own tools get it with our configs; any config gets it with::

    custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)
    default_hooks = dict(checkpoint=dict(type='convnext_backbone.CrashSafeCheckpointHook'))
"""
import contextlib
import logging
import os
import os.path as osp
import re
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper

from ..checkpoint.compatibility import (
    check_model_checkpoint,
    loaded_summary,
    partial_load_summary,
)
from ..checkpoint.files import (
    atomic_target,
    find_latest_checkpoint,
    is_local_path,
    write_atomically,
)
from ..checkpoint.safety import trust_checkpoint
from ..checkpoint.write_errors import write_failure
from ..config_schema import Schema, Value, boolean, is_int, number
from ..registry import HOOKS
from .model_fit import check_model_fits

_EARLIER_CHECKPOINT = re.compile(r'^(epoch|iter|best)_.*\.pth$')


class WorkDirInUseError(FileExistsError):
    """A fresh run would overwrite checkpoints that an earlier run wrote into its folder."""


def earlier_checkpoints(folder: str) -> List[str]:
    """The checkpoint files (``epoch_N.pth``, ``iter_N.pth``, ``best_*.pth``) in ``folder``."""
    if not osp.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if _EARLIER_CHECKPOINT.match(name))


def refuse_earlier_checkpoints(folder: str) -> None:
    """:class:`WorkDirInUseError` if ``folder`` holds an earlier run's checkpoints (for a fresh
    run that would write its own there). The hook asks this before training; our tools ask it
    before the Runner is built, so a refused run writes nothing at all (the Runner would first
    dump its config into the folder)."""
    found = earlier_checkpoints(folder)
    if found:
        raise WorkDirInUseError(
            f'{folder} holds checkpoints of an earlier run ({", ".join(found[:4])}'
            f'{", ..." if len(found) > 4 else ""}), which this fresh run would overwrite. '
            'Continue that run with --resume, train into another --work-dir, or replace '
            'them on purpose with tools/train.py --overwrite-checkpoints (config: '
            'default_hooks.checkpoint.overwrite=True).')


def _is_int_or_none(value) -> bool:
    return value is None or is_int(value)


#: The hook's settings (its own and the CheckpointHook ones it reads the same way), see
#: ``CrashSafeCheckpointHook.config_schema``; ``save_best`` against the evaluator's metrics is
#: checked by the tools (``cli.late_failures``).
SCHEMA: Schema = {
    'interval': number(integer=True, example=1,
                       about='save every N epochs/iterations; <= 0: only the last'),
    'by_epoch': boolean(about='interval in epochs (True) or iterations (False)'),
    'max_keep_ckpts': number(integer=True, example=1,
                             about='keep the newest N checkpoints; <= 0: all'),
    'save_begin': number(0, integer=True, example=0, about='the first epoch/iteration to save'),
    'save_last': boolean(),
    'save_optimizer': boolean(),
    'save_param_scheduler': boolean(),
    'out_dir': Value('a folder path or None', lambda value: value is None or isinstance(value, str),
                     None, 'where checkpoints go (default: the work dir)'),
    'partial_load': boolean(example=False, about='tools/train.py --partial-load'),
    'overwrite': boolean(example=False, about='tools/train.py --overwrite-checkpoints'),
}


@HOOKS.register_module()
class CrashSafeCheckpointHook(CheckpointHook):
    """CheckpointHook with atomic saves, removal after save, resume from the newest complete
    checkpoint, a checked ``load_from`` and no overwriting of an earlier run's checkpoints.

    Args:
        partial_load: load only the tensors of ``load_from`` that fit the model and log what
            stays freshly initialised, instead of refusing a checkpoint that does not fit.
        overwrite: let a fresh run write into a folder that holds an earlier run's checkpoints.
        Everything else: mmengine's CheckpointHook arguments, unchanged.
    """

    @staticmethod
    def config_schema() -> Schema:
        """The config values this hook reads, with their types and ranges (checked by the tools
        before anything is built)."""
        return SCHEMA

    def __init__(self, *args, partial_load: bool = False, overwrite: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.partial_load = partial_load
        self.overwrite = overwrite

    def _is_local(self) -> bool:
        return is_local_path(self.out_dir or '', self.file_client_args, self.backend_args)

    def before_run(self, runner) -> None:
        check_model_fits(runner.model)
        super().before_run(runner)
        # The Runner resumes (right after before_run) from runner._load_from, or, when that is
        # None, from mmengine's lookup of last_checkpoint alone; ours also survives a stale one.
        if getattr(runner, '_resume', False) and getattr(runner, '_load_from', None) is None \
                and self._is_local():
            runner._load_from = find_latest_checkpoint(runner.work_dir)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """``load_from`` (training and testing) and resume: the checkpoint must fit the model
        (mmengine's Runner.load_checkpoint calls this with the loaded file, before copying)."""
        state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            return
        model = runner.model  # the model the weights are for, as mmengine's loader unwraps it:
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):  # (DDP, --tta)
            model = model.module
        what = 'resume from' if getattr(runner, '_resume', False) else 'load_from'
        source = f'{what} {getattr(runner, "_load_from", None) or "the checkpoint"}'
        report = check_model_checkpoint(state, model.state_dict(), source,
                                        partial=self.partial_load)
        for note in report.notes():
            print_log(f'{source}: {note}.', logger='current')
        print_log(loaded_summary(source, report, checkpoint) if report.exact
                  else partial_load_summary(source, report), logger='current')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if getattr(runner, '_resume', False) and not getattr(runner, '_has_loaded', True):
            print_log(f'resume was asked for (--resume / resume=True), but {runner.work_dir} '
                      'holds no complete checkpoint to resume from: this run starts from '
                      'iteration 0.', logger='current', level=logging.WARNING)
        if getattr(runner, '_resume', False) or self.overwrite or not self._is_local():
            return
        refuse_earlier_checkpoints(self.out_dir)

    def _outdated(self, runner, step: int) -> List[str]:
        """Book ``step`` among the kept checkpoints; return the files it pushes out (removed only
        after the new checkpoint and ``last_checkpoint`` are on disk)."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return []  # a best-checkpoint save of the same step comes through here twice
        outdated = []
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            old = self.keep_ckpt_ids.popleft()
            outdated.append(osp.join(self.out_dir, self.filename_tmpl.format(old)))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return outdated

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = self._outdated(runner, step)
        name = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, name)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        save_args = dict(save_optimizer=self.save_optimizer,
                         save_param_scheduler=self.save_param_scheduler, meta=meta,
                         by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():  # the Runner saves on the main process only
            runner.save_checkpoint(self.out_dir, name, self.file_client_args, **save_args)
            return
        try:
            with atomic_target(self.last_ckpt) as temporary:
                runner.save_checkpoint(osp.dirname(temporary), osp.basename(temporary),
                                       self.file_client_args, **save_args)
            trust_checkpoint(self.last_ckpt)
            write_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        except OSError as error:  # a full disk, a quota, a read-only folder: one line
            failure = write_failure(error, self.last_ckpt, runner.work_dir)
            if failure is None:
                raise
            raise failure from error
        for path in outdated:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
