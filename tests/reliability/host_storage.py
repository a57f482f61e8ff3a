"""Storage other than the local disk, for tests of runs whose data is elsewhere: a folder served
over HTTP by a local ``http.server`` (in a thread of the test process), and an object store
registered with mmengine's fileio (the shape of petrel / S3 setups).

:class:`DirectoryStore` keeps its objects in a folder that configs never name: keys
``hoststore://<bucket>/<key>``, and, as petrel does, a ``path_mapping`` that turns
local-looking paths (``/mapped-storage/...``) into keys, so that a config's paths look like
local ones that are not on the disk. It implements what mmengine's datasets and transforms call:
``get``, ``get_text``, ``get_local_path``, ``exists``, ``isfile``, ``isdir``, ``join_path`` and
``list_dir_or_file``.
"""
import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Dict, Iterator, Optional

from mmengine.fileio import BaseStorageBackend, register_backend

SCHEME = 'hoststore'
MAPPED_ROOT = '/mapped-storage/'  # local-looking paths the store maps to its keys


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free local port; yields its base URL (no trailing /)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


class DirectoryStore(BaseStorageBackend):
    """An object store standing in for petrel / S3 (module docstring)."""

    buckets: Dict[str, Path] = {}

    def __init__(self, path_mapping: Optional[dict] = None):
        self.path_mapping = dict(path_mapping or {})

    def _file(self, filepath) -> Path:
        filepath = str(filepath)
        for local, key in self.path_mapping.items():
            if filepath.startswith(local):
                filepath = key + filepath[len(local):]
                break
        head = f'{SCHEME}://'
        if not filepath.startswith(head):
            raise FileNotFoundError(f'{filepath} is not a key of this store')
        bucket, _, key = filepath[len(head):].partition('/')
        if bucket not in self.buckets:
            raise FileNotFoundError(f'no bucket {bucket!r}')
        return self.buckets[bucket] / key

    def get(self, filepath) -> bytes:
        return self._file(filepath).read_bytes()

    def get_text(self, filepath, encoding='utf-8') -> str:
        return self._file(filepath).read_text(encoding=encoding)

    def exists(self, filepath) -> bool:
        return self._file(filepath).exists()

    def isfile(self, filepath) -> bool:
        return self._file(filepath).is_file()

    def isdir(self, filepath) -> bool:
        return self._file(filepath).is_dir()

    def join_path(self, filepath, *filepaths) -> str:
        return '/'.join([str(filepath).rstrip('/'), *(str(p).strip('/') for p in filepaths)])

    @contextlib.contextmanager
    def get_local_path(self, filepath):
        with tempfile.TemporaryDirectory() as folder:
            copy = os.path.join(folder, self._file(filepath).name)
            shutil.copyfile(self._file(filepath), copy)
            yield copy

    def list_dir_or_file(self, dir_path, list_dir=True, list_file=True, suffix=None,
                         recursive=False):
        top = self._file(dir_path)
        for path in sorted(top.rglob('*') if recursive else top.iterdir()):
            if (path.is_dir() and list_dir) or (path.is_file() and list_file and
                                                (suffix is None or path.name.endswith(suffix))):
                yield path.relative_to(top).as_posix()


def register_store(bucket: str, folder: Path) -> None:
    """Register :class:`DirectoryStore` with mmengine's fileio (name and URI prefix
    ``hoststore``) and keep ``bucket``'s objects in ``folder``."""
    register_backend(SCHEME, DirectoryStore, force=True, prefixes=SCHEME)
    DirectoryStore.buckets[bucket] = Path(folder)


def mapped_args(bucket: str) -> dict:
    """``backend_args`` of a petrel-style setup: local-looking paths under :data:`MAPPED_ROOT`
    read from ``bucket`` of the store."""
    return dict(backend=SCHEME, path_mapping={MAPPED_ROOT: f'{SCHEME}://{bucket}/'})
