"""What the whole test run builds once and every test process reads: the generated toy data and
the toy models trained through tools/train.py.

Under pytest-xdist each worker is a process with its own session fixtures; these builds are
shared by all of them: the first process that asks builds into a folder beside the workers'
temporary folders, under a lock, and marks it complete; the others wait for it and read it.
A build is deterministic, so which process makes it does not matter. Shared folders are read
only: a test that writes (resumes a run, replaces a checkpoint) works on :func:`copy_run`.
"""
import fcntl
import os
import shutil
from pathlib import Path
from typing import Callable

DONE = '.complete'


def shared_folder(tmp_path_factory) -> Path:
    """The folder every process of this test run sees: the parent of the workers' temporary
    folders under xdist, this process's own otherwise."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base


def build_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``<shared>/<name>``, made by ``build(folder)`` in the first process that asks."""
    shared = shared_folder(tmp_path_factory)
    folder = shared / name
    with open(shared / f'{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / DONE).is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
                folder.mkdir()
                build(folder)
                (folder / DONE).touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


def copy_run(source: Path, target: Path) -> Path:
    """A writable copy of a training work dir: its ``last_checkpoint`` names the copy's own
    checkpoint, so a resume reads and replaces files of the copy only."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(DONE), dirs_exist_ok=True)
    last = target / 'last_checkpoint'
    if last.is_file():
        last.write_text(str(target / Path(last.read_text().strip()).name))
    return target
