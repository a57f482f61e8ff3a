"""Training-checkpoint files: atomic writes, completeness, finding the newest complete one, and
the check our tools run on a checkpoint named on their command line.

File mechanics behind ``convnext_backbone.engine.CrashSafeCheckpointHook``: a write goes to a
temporary file beside the target, is synced and renamed over it, so a name only ever holds a
complete file; a zip-format checkpoint is complete when its zip directory is there;
``find_latest_checkpoint`` falls back to the newest complete ``epoch_N.pth``/``iter_N.pth`` when
``last_checkpoint`` is missing, empty or stale.
"""
import contextlib
import logging
import os
import os.path as osp
import re
import zipfile
from typing import Iterator, Optional

TEMPORARY_SUFFIX = '.tmp-'
_CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def is_local_path(filename, file_client_args=None, backend_args=None) -> bool:
    """Whether mmengine would write ``filename`` with its local-disk backend."""
    if not isinstance(filename, (str, os.PathLike)) or '://' in os.fspath(filename):
        return False
    for args in (file_client_args, backend_args):
        if args and (args.get('backend', 'local') not in ('local', 'disk')
                     or args.get('path_mapping')):
            return False
    return True


def _fsync(path: str) -> None:
    """Flush a file's (or a folder's entries') data to disk, where the platform can."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. folders cannot be opened on Windows; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a folder
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_target(filename: str, keep_suffix: bool = False) -> Iterator[str]:
    """Yield a temporary name beside ``filename``; on success make it ``filename`` atomically.

    Complete or absent: whatever kills the process, ``filename`` holds either its previous
    content or the new complete file. On an exception the temporary file is removed.
    ``keep_suffix``: the temporary name ends with ``filename``'s suffix too (for writers that
    check it, e.g. mmdet's ``DumpDetResults`` wants ``.pkl``).
    """
    folder, name = osp.split(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    stale = f'.{name}{TEMPORARY_SUFFIX}'
    for entry in os.listdir(folder):  # leftovers of a save of this name that was killed
        if entry.startswith(stale):
            with contextlib.suppress(OSError):
                os.remove(osp.join(folder, entry))
    temporary = osp.join(folder, f'{stale}{os.getpid()}'
                         f'{osp.splitext(name)[1] if keep_suffix else ""}')
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, filename)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync(folder)


def write_atomically(filename: str, text: str) -> None:
    """Write a small text file (e.g. ``last_checkpoint``) so that it is complete or unchanged."""
    with atomic_target(filename) as temporary:
        with open(temporary, 'w') as f:
            f.write(text)


def is_complete_checkpoint(path: str) -> bool:
    """A cheap completeness check: a zip-format torch file (torch's default) ends with the zip
    directory, which a truncated copy lacks; other formats only need to exist and be non-empty.
    Remote paths (``s3://``...) cannot be checked and count as complete."""
    if '://' in path:
        return True
    if not osp.isfile(path) or osp.getsize(path) == 0:
        return False
    with open(path, 'rb') as f:
        is_zip = f.read(2) == b'PK'
    return zipfile.is_zipfile(path) if is_zip else True


def find_latest_checkpoint(path: str, quiet: bool = False) -> Optional[str]:
    """mmengine's ``find_latest_checkpoint`` (the file named in ``<path>/last_checkpoint``), made
    robust to interrupted runs: when that file is missing, empty, or names a checkpoint that is
    gone or incomplete, the newest complete ``epoch_N.pth``/``iter_N.pth`` in ``path`` is taken
    (with a warning). None when there is nothing to resume from. ``quiet``: no log lines (for a
    caller that says what it found in its own words, e.g. the Ctrl-C line)."""
    from mmengine.logging import print_log
    save_file = osp.join(path, 'last_checkpoint')
    named = None
    if osp.isfile(save_file):
        with open(save_file) as f:
            named = f.read().strip() or None
    if named is not None and is_complete_checkpoint(named):
        return named
    found = []
    for entry in os.listdir(path) if osp.isdir(path) else ():
        match = _CHECKPOINT_NAME.match(entry)
        candidate = osp.join(path, entry)
        if match and is_complete_checkpoint(candidate):
            found.append((osp.getmtime(candidate), int(match.group(2)), candidate))
    if not found:
        if named is not None:
            return named  # let the loader say what is wrong with it
        if not quiet:
            print_log('Did not find last_checkpoint to be resumed.', logger='current')
        return None
    latest = max(found)[2]
    why = ('there is no last_checkpoint file' if not osp.isfile(save_file) else
           'last_checkpoint is empty' if named is None else
           f'last_checkpoint names {named}, which is missing or incomplete')
    if not quiet:
        print_log(f'Resuming from {latest}: {why}, and it is the newest complete checkpoint in '
                  f'{path}.', logger='current', level=logging.WARNING)
    return latest



def check_checkpoint_file(path: str, flag: str) -> None:
    """A checkpoint named on a tool's command line (``flag``) must be a file that is complete
    and safe to load or trusted (:func:`.safety.check_checkpoint`): fail in a second, before
    anything is built. Call it after trusting what the user vouched for."""
    from .safety import check_checkpoint
    if not osp.isfile(path):
        what = 'is a folder, not a checkpoint file' if osp.isdir(path) else 'does not exist'
        raise FileNotFoundError(
            f'{flag}: checkpoint {path} {what}. Give the path of a .pth file written by '
            'tools/train.py (e.g. work_dirs/<config name>/epoch_12.pth, or the file named in '
            'work_dirs/<config name>/last_checkpoint).')
    check_checkpoint(path)
