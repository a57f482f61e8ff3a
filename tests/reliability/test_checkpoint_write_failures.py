"""A checkpoint the disk refuses (full, quota, file size limit, read-only or unwritable folder):
one ``error:`` line naming the cause, the intact earlier checkpoint and the fix (--resume); no
half-written file; the earlier checkpoints and ``last_checkpoint`` as they were. And a work dir
on a read-only file system is refused at startup, before the Runner writes anything."""
import errno
import os
import resource
import subprocess
import sys

import pytest
from toy_runner import train_regressor

import convnext_backbone  # noqa: F401  (registers the hook)
from convnext_backbone.checkpoint.write_errors import CheckpointWriteError
from convnext_backbone.cli.entry import report_failure


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize('code, problem, fix', [
    (errno.ENOSPC, 'the disk is full', 'free space on that disk'),
    (errno.EROFS, 'the file system is read-only', 'make the folder writable'),
    (errno.EFBIG, 'file size limit', 'ulimit -f unlimited'),
], ids=['full-disk', 'read-only', 'size-limit'])
def test_refused_save_is_one_line_and_keeps_the_earlier_checkpoint(tmp_path, monkeypatch, capsys,
                                                                   code, problem, fix):
    train_regressor(tmp_path, 1, max_keep_ckpts=1)
    before = snapshot(tmp_path)
    from mmengine.runner import runner as runner_module
    real_save = runner_module.save_checkpoint

    def refused_midway(checkpoint, filename, *args, **kwargs):
        """Half the file gets written, then the disk says no (as os.write would)."""
        real_save(checkpoint, filename, *args, **kwargs)
        with open(filename, 'r+b') as f:
            f.truncate(os.path.getsize(filename) // 2)
        raise OSError(code, os.strerror(code), filename)

    monkeypatch.setattr(runner_module, 'save_checkpoint', refused_midway)
    with pytest.raises(CheckpointWriteError) as caught:
        train_regressor(tmp_path, 2, resume=True, max_keep_ckpts=1)
    message = str(caught.value)
    assert problem in message and fix in message and '--resume' in message, message
    assert f'{tmp_path / "epoch_1.pth"}, is intact' in message, message
    assert f'checkpoint {tmp_path / "epoch_2.pth"} could not be written' in message
    after = snapshot(tmp_path)
    assert {name: after.get(name) for name in before} == before  # byte for byte
    assert not [n for n in after if n.endswith('.pth') and n not in before]
    assert not [n for n in os.listdir(tmp_path) if '.tmp-' in n]
    capsys.readouterr()  # what the run logged
    assert report_failure(caught.value) == 1  # what the tools print for it
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f'error: {message}', lines


def test_other_os_errors_are_left_as_they_are(tmp_path, monkeypatch):
    from mmengine.runner import runner as runner_module

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, 'Input/output error')

    monkeypatch.setattr(runner_module, 'save_checkpoint', broken)
    with pytest.raises(OSError) as caught:
        train_regressor(tmp_path, 1)
    assert not isinstance(caught.value, CheckpointWriteError)
    assert caught.value.errno == errno.EIO


def test_read_only_work_dir_is_refused_at_startup(tmp_path, monkeypatch):
    """(As root, a folder's mode does not stop writes: the file system's answer is simulated.)"""
    from convnext_backbone.cli import checks

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(checks.tempfile, 'TemporaryFile', read_only)
    with pytest.raises(checks.WorkDirError, match=r'work dir .*runs/toy: cannot write there '
                       r'\(Read-only file system\)\. Choose another --work-dir'):
        checks.check_work_dir(str(tmp_path / 'runs' / 'toy'))


@pytest.mark.slow  # two toy trainings through tools/train.py (subprocesses)
def test_tools_train_at_the_file_size_limit(tmp_path, toy_root):
    """A real refusal by the operating system, no mock: a resumed run whose next checkpoint is
    larger than the process may write (RLIMIT_FSIZE, what ulimit -f sets; the same error path
    as a full disk) ends with one error line, the earlier checkpoint intact."""
    from conftest import REPO
    from toy_runs import TOY_SEG, TRAIN, seg_options
    from toy_runs import train as train_tool
    train_tool(tmp_path, seg_options(toy_root, max_iters=1, interval=1))
    before = snapshot(tmp_path)
    limit = len(before['iter_1.pth']) // 2

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, str(TRAIN), TOY_SEG, '--work-dir', str(tmp_path), '--resume',
         '--cfg-options', *seg_options(toy_root, max_iters=2, interval=1)],
        cwd=REPO, capture_output=True, text=True, timeout=600, preexec_fn=limited)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: checkpoint {tmp_path / "iter_2.pth"} could not be written: '
                           'the file would exceed the file size limit'), proc.stderr[-3000:]
    assert f'{tmp_path / "iter_1.pth"}, is intact' in last and '--resume' in last, last
    after = snapshot(tmp_path)
    assert after['iter_1.pth'] == before['iter_1.pth']
    assert after['last_checkpoint'] == before['last_checkpoint']
    assert not [n for n in os.listdir(tmp_path) if '.tmp-' in n or n == 'iter_2.pth']
