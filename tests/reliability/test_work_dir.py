"""No run destroys another run's checkpoints: a fresh run (no resume) into a work dir that holds
an earlier run's epoch_N.pth / iter_N.pth is refused before it writes a checkpoint, instead of
overwriting them and pointing last_checkpoint at its own. (mmengine's Runner has by then dumped
its config as a new ``<timestamp>.py`` and opened a new ``<timestamp>/`` log folder: new names,
nothing overwritten; tools/train.py refuses before it builds the Runner, so there nothing at all
is written.) Resuming, or saying so
(overwrite=True, tools/train.py --overwrite-checkpoints), still works."""
import re

import pytest
from toy_runner import CRASH_SAFE_HOOK, train_regressor

import convnext_backbone  # noqa: F401  (registers the hook)
from convnext_backbone.engine.checkpoint_hook import WorkDirInUseError

OURS = CRASH_SAFE_HOOK


def train(work_dir, epochs, resume=False, hook=OURS, lr=0.01, **hook_args):
    train_regressor(work_dir, epochs, resume, hook, lr, **hook_args)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def assert_earlier_files_unchanged(before, folder):
    """Every file of the ``before`` snapshot is still in ``folder``, byte for byte."""
    after = snapshot(folder)
    assert {name: after.get(name) for name in before} == before
    return after


def test_stock_hook_overwrites_the_earlier_runs_checkpoints(tmp_path):
    """The data loss as mmengine has it (why the check exists)."""
    train(tmp_path, epochs=2, hook='CheckpointHook')
    before = snapshot(tmp_path)
    train(tmp_path, epochs=1, hook='CheckpointHook', lr=0.5)
    assert snapshot(tmp_path)['epoch_1.pth'] != before['epoch_1.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('epoch_1.pth')


def test_a_fresh_run_into_an_earlier_runs_work_dir_is_refused_and_changes_nothing(tmp_path):
    train(tmp_path, epochs=2)
    before = snapshot(tmp_path)
    with pytest.raises(WorkDirInUseError, match=r'holds checkpoints of an earlier run \('
                       r'epoch_1\.pth, epoch_2\.pth\).*--resume.*--work-dir'):
        train(tmp_path, epochs=1, lr=0.5)
    after = assert_earlier_files_unchanged(before, tmp_path)
    new = set(after) - set(before)  # at most the refused Runner's own config dump
    assert all(re.fullmatch(r'\d{8}_\d{6}\.py', name) for name in new), new


def test_resume_continues_in_the_same_work_dir(tmp_path):
    train(tmp_path, epochs=1)
    train(tmp_path, epochs=2, resume=True)
    assert (tmp_path / 'epoch_2.pth').exists()


def test_overwrite_replaces_them_on_purpose(tmp_path):
    train(tmp_path, epochs=1)
    before = snapshot(tmp_path)['epoch_1.pth']
    train(tmp_path, epochs=1, lr=0.5, overwrite=True)
    assert snapshot(tmp_path)['epoch_1.pth'] != before


@pytest.mark.slow
def test_tools_train_refuses_a_fresh_run_in_a_used_work_dir(tmp_path, toy_root):
    """The earlier run's checkpoint is a stand-in file (the hook goes by the names of a work
    dir's checkpoints); the overwrite run then replaces it with a real one."""
    from toy_runs import seg_options
    from toy_runs import train as train_tool
    options = seg_options(toy_root, max_iters=1, interval=1)
    (tmp_path / 'iter_1.pth').write_bytes(b'an earlier run\'s checkpoint')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1.pth'))
    before = snapshot(tmp_path)
    proc = train_tool(tmp_path, options, check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'holds checkpoints of an earlier run (iter_1.pth)' in last
    assert '--overwrite-checkpoints' in last and 'Traceback' not in proc.stderr
    assert_earlier_files_unchanged(before, tmp_path)
    # refused before the Runner was built: not even its config dump or log folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
    train_tool(tmp_path, options, '--overwrite-checkpoints')
    assert snapshot(tmp_path)['iter_1.pth'] != before['iter_1.pth']
