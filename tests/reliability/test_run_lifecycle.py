"""A run's life in its work dir: one run at a time (a lock naming its holder; a lock left by a
killed run taken over with a notice), a refused start leaves the folder as it was, Ctrl-C is
one line with exit status 130 and no partial file, and --resume with nothing to resume says so.
The pieces in process, then real runs of tools/train.py (concurrent, killed, interrupted)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from convnext_backbone.cli import progress
from convnext_backbone.cli import work_dir as work_dir_module
from convnext_backbone.cli.work_dir import LOCK_NAME, WorkDirBusyError, claim_work_dir

from toy_runs import paused_run, seg_options, train, train_until_interrupted


def names(folder):
    return sorted(p.name for p in folder.iterdir())


# In process ---------------------------------------------------------------------------------------

def test_a_second_claim_is_refused_naming_the_holder(tmp_path):
    with claim_work_dir(str(tmp_path)):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder['pid'] == os.getpid() and holder['host'] and holder['command']
        before = names(tmp_path)
        with pytest.raises(WorkDirBusyError, match=rf'work dir {tmp_path} is in use by another '
                           rf"run \(pid {os.getpid()} on {holder['host']}, started .*\)\. Wait "
                           'for it to finish or stop it, or write this run into another '
                           '--work-dir'):
            with claim_work_dir(str(tmp_path)):
                pass
        assert names(tmp_path) == before  # the refused claim changed nothing
    assert names(tmp_path) == []  # the lock goes with its run


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_notice(tmp_path, monkeypatch):
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    lock = dict(pid=int(gone), host=socket.gethostname(), started='earlier', command='train.py x')
    (tmp_path / LOCK_NAME).write_text(json.dumps(lock))
    notices = []
    monkeypatch.setattr(work_dir_module, 'print_log', lambda text, **kwargs: notices.append(text))
    with claim_work_dir(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_NAME).read_text())['pid'] == os.getpid()
    assert len(notices) == 1 and f'the run that held it is gone (pid {gone}' in notices[0]
    assert 'taking over its lock' in notices[0]


def test_a_failed_start_leaves_the_work_dir_as_it_was(tmp_path):
    (tmp_path / 'old').mkdir()
    (tmp_path / 'old' / 'epoch_1.pth').write_text('earlier run')
    for work_dir, expected in ((tmp_path / 'old', ['epoch_1.pth']),
                               (tmp_path / 'new' / 'deeper', None)):
        with pytest.raises(RuntimeError):
            with claim_work_dir(str(work_dir)):
                (work_dir / '20261207_010203').mkdir()       # mmengine's log folder
                (work_dir / '20261207_010203.py').write_text('')  # its config dump
                raise RuntimeError('the dataset cannot be built')
        if expected is None:
            assert not (tmp_path / 'new').exists()  # and the parents the attempt created
        else:
            assert names(work_dir) == expected


def test_a_run_that_had_started_keeps_its_logs(tmp_path):
    with pytest.raises(RuntimeError):
        with claim_work_dir(str(tmp_path)):
            (tmp_path / '20261207_010203').mkdir()
            progress.current().phase = 'train'  # the first iteration began
            raise RuntimeError('later')
    assert names(tmp_path) == ['20261207_010203']


# Real runs ----------------------------------------------------------------------------------------

@pytest.mark.slow  # runs of tools/train.py
def test_concurrent_run_refused_then_a_killed_runs_lock_is_taken_over(toy_root, tmp_path):
    """A run is paused right after it took the work dir (before its Runner is built: the
    cheapest point that holds it); a second run into the same work dir is refused in one line
    naming it and changes nothing; the first is killed (kill -9): its lock file stays, and the
    next run (with --resume, and nothing to resume) takes it over with a notice, says there was
    nothing to resume, trains and leaves no lock."""
    work_dir = tmp_path / 'run'
    options = seg_options(toy_root, max_iters=1, interval=1)
    holding = ['--pause-in', 'convnext_backbone.cli.checks:check_fresh_run', '--from-iter', 0]
    with paused_run(work_dir, options, holding) as (first, _):
        before = names(work_dir)
        second = train(work_dir, options, check=False)
        assert second.returncode == 1, second.stderr[-3000:]
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith(f'error: work dir {work_dir} is in use by another run (pid '
                               f'{first.pid} on '), line
        assert 'train.py' in line and 'Traceback' not in second.stderr
        assert names(work_dir) == before
        first.kill()
        first.wait()
    assert LOCK_NAME in names(work_dir)
    third = train(work_dir, options, '--resume')
    log = third.stdout + third.stderr
    assert f'the run that held it is gone (pid {first.pid}' in log and 'taking over' in log
    assert 'holds no complete checkpoint to resume from: this run starts from iteration 0' in log
    assert 'iter_1.pth' in names(work_dir) and LOCK_NAME not in names(work_dir)


@pytest.mark.slow
def test_ctrl_c_during_a_checkpoint_save_is_one_line_exit_130_no_partial_file(
        toy_root, tmp_path):
    """Ctrl-C while mmengine formats the config for the checkpoint of iteration 2 (where its
    formatter turns the interrupt into "SyntaxError: Failed to format the config file")."""
    work_dir = tmp_path / 'run'
    code, output = train_until_interrupted(
        work_dir, seg_options(toy_root, max_iters=2, interval=1),
        ['--pause-in', 'mmengine.config.config:FormatCode', '--from-iter', 2])
    assert code == 130, output[-3000:]
    assert output.strip().splitlines()[-1] == (
        f'interrupted (Ctrl-C) at iteration 2; the last complete checkpoint is '
        f'{work_dir}/iter_1.pth; resume with the same command and --resume')
    assert 'SyntaxError' not in output and 'Traceback' not in output
    assert 'iter_1.pth' in names(work_dir) and 'iter_2.pth' not in names(work_dir)
    assert not [n for n in names(work_dir) if '.tmp-' in n or n == LOCK_NAME]
