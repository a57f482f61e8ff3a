"""A work dir belongs to one run at a time, and a run refused at startup leaves it as it was.

:func:`claim_work_dir` is what ``tools/train.py`` and ``tools/test.py`` wrap their run in:

* **One run at a time.** The run holds ``<work dir>/run.lock``: an exclusive ``flock`` on an
  open file that names the holder (pid, host, start time, command). A second run into the same
  folder is refused in one line naming that process. The kernel drops the lock when its holder
  dies in any way (kill -9, out of memory), so a lock file left behind is recognised as stale
  and taken over with a notice. Where ``flock`` does nothing or is not supported, the holder's
  pid is asked instead (same host). The file is removed when the run ends. Under torchrun only
  rank 0 takes it: one lock per run, not per process.
* **Nothing left by a refused run.** Until the run's first iteration begins
  (``progress.current().started``), a failure undoes what the attempt created: the entries that
  appeared in the work dir (mmengine's timestamped log folder, its config dump), and the work
  dir itself (and the parents it needed) when the attempt created it. Entries that were there
  before are never touched. After the first iteration, everything stays (logs of a run that
  failed are worth reading).
"""
import contextlib
import datetime
import errno
import json
import os
import os.path as osp
import shlex
import shutil
import signal
import socket
import sys
import threading
from typing import Iterator, Optional

from mmengine.logging import print_log

from . import progress
from .checks import WorkDirError, check_work_dir, missing_parents, remove_created

LOCK_NAME = 'run.lock'


class WorkDirBusyError(WorkDirError):
    """Another run is writing into this work dir now."""


def _process_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a process
    from a later one that got the same pid."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict) -> bool:
    """Whether the process a lock file names still runs (only answerable on its own host)."""
    pid = holder.get('pid')
    if holder.get('host') != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get('process_start')
    return started is None or _process_start(pid) in (None, started)


def _describe(holder: dict) -> str:
    if not holder:
        return 'a run that has not written its details yet'
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
            f"{holder.get('command')}")


class RunLock:
    """The lock file of one work dir (see the module's docstring)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = osp.join(folder, LOCK_NAME)
        self.fd: Optional[int] = None

    def _read(self, fd: int) -> dict:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            return json.loads(os.read(fd, 65536).decode('utf-8') or '{}')
        except (ValueError, UnicodeDecodeError):
            return {}

    def _refuse(self, holder: dict) -> None:
        raise WorkDirBusyError(
            f'work dir {self.folder} is in use by another run ({_describe(holder)}). Wait for '
            'it to finish or stop it, or write this run into another --work-dir.')

    def acquire(self) -> None:
        """Take the lock, or raise :class:`WorkDirBusyError` naming its holder."""
        import fcntl
        for _ in range(20):  # the file can be removed by its holder between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locking = True
            except BlockingIOError:
                holder = {}
                for _ in range(20):  # it may still be writing its details
                    holder = self._read(fd)
                    if holder:
                        break
                    threading.Event().wait(0.05)
                os.close(fd)
                self._refuse(holder)
            except OSError as error:  # no flock on this file system
                if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
                locking = False
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self._read(fd)
            if previous and previous.get('pid') != os.getpid():
                if _alive(previous) and (not locking or previous.get('host') ==
                                         socket.gethostname()):
                    os.close(fd)
                    self._refuse(previous)
                print_log(f'work dir {self.folder}: the run that held it is gone '
                          f'({_describe(previous)}); taking over its lock.',
                          logger='current', level=30)
            self._write(fd)
            self.fd = fd
            return
        raise WorkDirError(f'work dir {self.folder}: cannot take the lock {self.path} (it keeps '
                           'disappearing); is another program removing files there?')

    def _write(self, fd: int) -> None:
        pid = os.getpid()
        details = dict(pid=pid, host=socket.gethostname(),
                       started=datetime.datetime.now().astimezone().strftime(
                           '%Y-%m-%d %H:%M:%S %Z'),
                       command=' '.join(shlex.quote(a) for a in [
                           osp.basename(sys.executable), *sys.argv]),
                       process_start=_process_start(pid))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(details).encode('utf-8'))
        os.fsync(fd)

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and drop the lock."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                os.remove(self.path)
        os.close(self.fd)
        self.fd = None


def _remove_new(folder: str, before: set) -> None:
    """Remove what appeared in ``folder`` since ``before`` (names), except the lock."""
    for name in set(os.listdir(folder)) - before - {LOCK_NAME} if osp.isdir(folder) else ():
        path = osp.join(folder, name)
        with contextlib.suppress(OSError):
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """A second Ctrl-C while the attempt is being undone would leave it half undone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def claim_work_dir(folder: str, tool: str = 'train', lock: bool = True) -> Iterator[None]:
    """Create and check ``folder`` (``checks.check_work_dir``), hold its lock (``lock``: rank 0
    of a run) while the body runs, and undo the attempt when the body fails before the run's
    first iteration (see the module's docstring)."""
    run = progress.reset(tool, folder)
    created = missing_parents(folder)
    held = RunLock(folder) if lock else None
    try:
        check_work_dir(folder)
        if held:
            held.acquire()
    except BaseException:
        with _no_interrupts():
            remove_created(created)
        raise
    before = set(os.listdir(folder))
    try:
        yield
    except BaseException:
        with _no_interrupts():
            undo = held is not None and not run.started
            if undo:
                _remove_new(folder, before)
            if held:
                held.release()
            if undo:
                remove_created(created)
        raise
    if held:
        held.release()
