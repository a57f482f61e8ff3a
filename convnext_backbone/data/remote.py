"""Files the run reads from storage other than the local disk (a URL, an object store behind a
registered mmengine fileio backend), checked by a small spread sample.

Looking for every file there costs a request each (COCO: 118k), and some backends cannot say
whether a file exists without fetching it (HTTP). The run fetches each file itself, with
mmengine's ``fileio.get`` and the loading transform's ``backend_args``; at startup
:data:`REMOTE_SAMPLE` of them, spread evenly over the list (first and last included), are
fetched the same way and decoded. A file of the sample that cannot be fetched or decoded is an
error naming it (the run would fail on it too); the startup line says how many were fetched and
that the others' presence is not checked.
"""
import os.path as osp
from typing import Optional, Sequence

from .errors import DataError
from .image_files import sample_positions, undecodable_bytes

#: At most this many files of a list on remote storage are fetched and decoded at startup.
REMOTE_SAMPLE = 8


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f'{type(error).__name__}: {lines[0][:200]}' if lines else type(error).__name__


def common_folder(paths: Sequence[str]) -> str:
    """The folder all ``paths`` lie in (a URL's too), for the startup line."""
    prefix = osp.commonprefix(list(paths))
    return prefix[:prefix.rfind('/') + 1] if '/' in prefix else prefix


def fetch(path: str, backend, name: str, what: str, how: str) -> bytes:
    """``backend.get(path)``; a failure is a :class:`DataError` naming the file, the backend and
    ``how`` the run reads it."""
    try:
        return backend.get(path)
    except Exception as error:
        raise DataError(f'{path} cannot be read through {name} ({_reason(error)}); the run reads '
                        f'{what} the same way ({how}), so it would fail there. Put the file '
                        'there, or fix data_root / data_prefix / backend_args.') from None


def read_text(path: str, backend, name: str, how: str) -> str:
    """An annotation file's text through ``backend`` (see :func:`fetch`)."""
    data = fetch(path, backend, name, 'its annotation file', how)
    try:
        return data.decode('utf-8') if isinstance(data, bytes) else str(data)
    except UnicodeDecodeError as error:
        raise DataError(f'{path}: the annotation file is not UTF-8 text ({error.reason} at byte '
                        f'{error.start}): is it really the JSON file? Point ann_file at the '
                        'COCO-style .json.') from None


def check_remote_files(paths: Sequence[str], backend, name: str, what: str, how: str,
                       limit: Optional[int] = None) -> str:
    """Fetch and decode a spread sample of ``paths`` through ``backend``; returns the startup
    line (what was fetched, what was not checked). ``what``: 'images' or 'label maps'."""
    limit = REMOTE_SAMPLE if limit is None else limit
    positions = sample_positions(len(paths), limit)
    for position in positions:
        path = paths[position]
        why = undecodable_bytes(fetch(path, backend, name, what, how))
        if why:
            raise DataError(f'{path} does not decode as an image ({why}), read through {name}. '
                            'Replace the file (upload it again), or remove it from the '
                            'dataset.')
    where = common_folder(paths) or paths[0]
    if len(positions) == len(paths):
        return f'{what} on {where} ({name}): all {len(paths)} fetched and decoded.'
    return (f'{what} on {where} ({name}): {len(positions)} of {len(paths)} fetched and decoded '
            f"(spread over the list); not checked: the others' presence.")
