"""CrashSafeCheckpointHook in an mmengine Runner: the files it leaves, the order it removes old
checkpoints in, and resume=True when last_checkpoint is stale (the kill tests in
tests/reliability/ run it end to end through tools/train.py)."""
import os

import pytest
from toy_runner import CRASH_SAFE_HOOK, train_regressor

import convnext_backbone  # noqa: F401  (registers the hook)
from convnext_backbone.engine import CrashSafeCheckpointHook

OURS = CRASH_SAFE_HOOK


def run(work_dir, epochs, resume=False, max_keep_ckpts=2, hook=OURS):
    return train_regressor(work_dir, epochs, resume, hook, max_keep_ckpts=max_keep_ckpts)


def test_is_registered_and_is_a_checkpoint_hook():
    from mmengine.hooks import CheckpointHook
    from mmengine.registry import HOOKS
    assert issubclass(CrashSafeCheckpointHook, CheckpointHook)
    assert HOOKS.get('convnext_backbone.CrashSafeCheckpointHook') is CrashSafeCheckpointHook


def test_keeps_the_newest_checkpoints_and_no_temporary_files(tmp_path):
    run(tmp_path, epochs=3)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == \
        ['epoch_2.pth', 'epoch_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_3.pth')
    assert not [n for n in os.listdir(tmp_path) if '.tmp-' in n]


def test_old_checkpoint_is_removed_only_after_the_new_one_is_complete(tmp_path, monkeypatch):
    """With max_keep_ckpts=1 a failing save must leave the previous checkpoint in place."""
    run(tmp_path, epochs=1, max_keep_ckpts=1)
    from mmengine.runner import runner as runner_module
    real_save = runner_module.save_checkpoint

    def dies_midway(checkpoint, filename, *args, **kwargs):
        real_save(checkpoint, filename, *args, **kwargs)
        with open(filename, 'r+b') as f:
            f.truncate(100)
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(runner_module, 'save_checkpoint', dies_midway)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, epochs=2, resume=True, max_keep_ckpts=1)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == ['epoch_1.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_1.pth')


def test_stock_hook_removes_the_old_checkpoint_first(tmp_path, monkeypatch):
    """The failure the hook exists for, shown with mmengine's own CheckpointHook."""
    run(tmp_path, epochs=1, max_keep_ckpts=1, hook='CheckpointHook')
    from mmengine.runner import runner as runner_module

    def dies(checkpoint, filename, *args, **kwargs):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(runner_module, 'save_checkpoint', dies)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, epochs=2, resume=True, max_keep_ckpts=1, hook='CheckpointHook')
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.pth')]


def test_resume_with_a_stale_last_checkpoint_takes_the_newest_complete_one(tmp_path):
    run(tmp_path, epochs=2)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_9.pth'))  # gone
    runner = run(tmp_path, epochs=3, resume=True)
    assert runner.epoch == 3
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_3.pth')
