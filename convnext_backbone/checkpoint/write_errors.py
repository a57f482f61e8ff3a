"""A checkpoint that cannot be written, told as one line: what stopped the write (a full disk, a
used-up quota, a file size limit, a read-only or unwritable folder), what is on disk now, and
what to do.

``CrashSafeCheckpointHook`` writes through a temporary file (``files.atomic_target``), so a write
that fails leaves no half-written file and the earlier checkpoints as they were; without this the
run ended with ``OSError: [Errno 28] No space left on device: '.../.epoch_2.pth.tmp-123'``,
which names a file that no longer exists and no way on.
"""
import errno
import os.path as osp
import shutil
from typing import Optional

from .errors import CheckpointError
from .files import find_latest_checkpoint

_SPACE = 'free space on that disk, or move the work dir to a larger one and pass it as --work-dir'
_WRITABLE = 'make the folder writable, or move the work dir elsewhere and pass it as --work-dir'
#: errno -> (the problem, the fix)
CAUSES = {
    errno.ENOSPC: ('the disk is full', _SPACE),
    errno.EDQUOT: ('the disk quota is used up', _SPACE),
    errno.EFBIG: ('the file would exceed the file size limit (the process\'s, ulimit -f, or '
                  'the file system\'s, e.g. 4 GiB on FAT32)',
                  'raise the limit (ulimit -f unlimited) or move the work dir to another file '
                  'system and pass it as --work-dir'),
    errno.EROFS: ('the file system is read-only', _WRITABLE),
    errno.EACCES: ('permission denied', _WRITABLE),
    errno.EPERM: ('operation not permitted', _WRITABLE),
}


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written; the message names the cause, the intact checkpoint and
    the fix."""

    def __str__(self) -> str:  # OSError would prefix an errno
        return str(self.args[0]) if self.args else ''


def _free_space(folder: str) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ''
    return f'; {free / 2 ** 20:.0f} MiB free there'


def write_failure(error: OSError, target: str, work_dir: str) -> Optional[CheckpointWriteError]:
    """The one-line error for ``error`` raised while writing checkpoint ``target`` of the run in
    ``work_dir``; None for an ``OSError`` of another kind (left as it is)."""
    cause = CAUSES.get(getattr(error, 'errno', None))
    if cause is None:
        return None
    problem, fix = cause
    folder = osp.dirname(osp.abspath(target))
    latest = find_latest_checkpoint(work_dir, quiet=True)
    kept = (f'the last complete checkpoint, {latest}, is intact' if latest else
            'no earlier checkpoint exists')
    return CheckpointWriteError(
        f'checkpoint {target} could not be written: {problem} ({folder}'
        f'{_free_space(folder)}). Nothing half-written was left and {kept}. To go on, {fix}, '
        'then run the same command with --resume.')
