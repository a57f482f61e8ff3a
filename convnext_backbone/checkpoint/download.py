"""Checkpoint URLs: downloaded once into torch hub's cache, complete or not at all.

Every URL the package fetches (the released models named by ``tools/test.py CONFIG released``,
an ``http(s)://`` checkpoint given to a tool or to mmengine's loader, a pretrained backbone named
by URL in ``init_cfg``) comes through :func:`download`:

* the file goes to ``torch.hub.get_dir()/checkpoints/<file name>`` (``$TORCH_HOME/hub/...``, as
  torch hub and mmengine put their downloads), and a file already there is used without a
  request;
* it is written under a temporary name beside its target and renamed only once the transfer is
  complete (all the bytes the server announced arrived, and a zip-format checkpoint has its zip
  directory), so a transfer cut off half-way is never loaded: the next run downloads the file
  again. A cut-off file that some other tool left under the final name (torch hub, ``mim
  download`` or ``wget`` keep whatever arrived) is recognised the same way and fetched again;
* processes that want the same file at once (the ranks of ``tools/dist_test.sh``, two jobs
  sharing a cache) take turns on a lock file beside it: one downloads, the others then find it;
* progress is shown while it runs (tqdm on stderr where installed);
* a failure (no network, an HTTP error, a cut-off transfer) is one
  :class:`~.errors.DownloadError` line naming the file, the URL and where to put a copy
  downloaded by hand.

Why not torch hub's own ``download_url_to_file``: it stops reading when the connection closes
without checking the announced length, and keeps what arrived as if it were complete.
"""
import contextlib
import http.client
import os
import os.path as osp
import sys
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import unquote, urlparse

from .errors import DownloadError
from .files import atomic_target, is_complete_checkpoint

#: Seconds a connection may stay silent before the download counts as failed.
TIMEOUT = 60
_CHUNK = 1 << 20


def is_url(path) -> bool:
    """Whether ``path`` names a file to download (``http://``, ``https://``, ``file://``)."""
    return isinstance(path, str) and path.startswith(('http://', 'https://', 'file://'))


def file_name(url: str) -> str:
    """The file name a URL's path ends with (what the cache calls it)."""
    return osp.basename(unquote(urlparse(url).path))


def cache_path(url: str) -> str:
    """Where the download of ``url`` is kept: torch hub's checkpoint cache, by file name."""
    import torch
    return osp.join(torch.hub.get_dir(), 'checkpoints', file_name(url))


def _log(message: str) -> None:
    from mmengine.logging import print_log
    print_log(message, logger='current')


def _where_to_put_it(url: str, target: str) -> str:
    return (f'Download {file_name(url)} yourself from {url} and put it at {target} (the folder '
            'follows $TORCH_HOME), or give the local file instead of the URL.')


def _progress_bar(total: Optional[int], name: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=name, unit='B', unit_scale=True, unit_divisor=1024,
                file=sys.stderr, mininterval=1.0, leave=False)


def _transfer(url: str, temporary: str, target: str) -> None:
    """Write ``url`` into ``temporary``; raise :class:`DownloadError` unless all of it arrived."""
    name = file_name(url)
    request = urllib.request.Request(url, headers={'User-Agent': 'convnext_backbone'})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        raise DownloadError(f'Could not download {name}: {url} answered HTTP {error.code} '
                            f'{error.reason}. {_where_to_put_it(url, target)}') from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, 'reason', error)
        raise DownloadError(f'Could not download {name} from {url} ({reason}): no internet '
                            f'here? {_where_to_put_it(url, target)}') from None
    with response:
        announced = response.headers.get('Content-Length')
        total = int(announced) if announced and announced.isdigit() else None
        _log(f'Downloading {url} to {target}' + (f' ({total / 2**20:.1f} MiB)' if total else ''))
        bar = _progress_bar(total, name)
        received = 0
        try:
            with open(temporary, 'wb') as out:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as error:  # a reset connection, a timeout
            raise DownloadError(
                f'The download of {name} from {url} failed after {received} bytes ({error}); '
                'nothing was kept: run again to download it again.') from None
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received != total:
        raise DownloadError(
            f'The download of {name} from {url} stopped after {received} of {total} bytes (the '
            'connection closed early); nothing was kept: run again to download it again.')
    if not is_complete_checkpoint(temporary):
        raise DownloadError(
            f'The download of {name} from {url} is not a complete checkpoint ({received} bytes; '
            'its zip directory is missing); nothing was kept: run again to download it again.')


@contextlib.contextmanager
def _one_at_a_time(target: str):
    """Hold an exclusive lock on ``.<name>.lock`` beside ``target`` (where the platform has
    ``fcntl``; elsewhere concurrent downloads each write their own temporary file)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    folder, name = osp.split(target)
    with open(osp.join(folder, f'.{name}.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def download(url: str) -> str:
    """The local copy of ``url`` in torch hub's cache, downloaded now if it is not there complete.

    Returns the cached path. Raises :class:`~.errors.DownloadError` (one line) when the file
    cannot be downloaded completely; nothing is left under the cached name then.
    """
    if not file_name(url):
        raise DownloadError(f'{url} names a folder, not a checkpoint file: give the URL of the '
                            'file itself (ending in its name, e.g. .../model.pth).')
    target = cache_path(url)
    if osp.isfile(target) and is_complete_checkpoint(target):
        return target
    os.makedirs(osp.dirname(target), exist_ok=True)
    with _one_at_a_time(target):
        return _download_locked(url, target)


def _download_locked(url: str, target: str) -> str:
    if osp.isfile(target):
        if is_complete_checkpoint(target):
            return target
        _log(f'{target} is incomplete (a download that was cut off): removed, downloading it '
             'again.')
        os.remove(target)
    with atomic_target(target) as temporary:
        _transfer(url, temporary, target)
    _log(f'Downloaded {file_name(url)} ({osp.getsize(target) / 2**20:.1f} MiB) to {target}')
    return target


def load_checkpoint_url(url: str, map_location=None):
    """A checkpoint URL as mmengine's loader reads it (``load_from``, ``init_detector``,
    ``init_model``, the inferencers; ``convnext_backbone.compat`` registers this for
    ``http(s)://``): downloaded by :func:`download` (rank 0 first in a distributed run, as
    mmengine's own loader), then read by the safe loader (``.safety.load_checkpoint_file``)."""
    from mmengine.dist import barrier, get_dist_info

    from .safety import load_checkpoint_file
    rank, world_size = get_dist_info()
    if rank == 0:
        local = download(url)
    if world_size > 1:
        barrier()
        if rank > 0:
            local = download(url)
    return load_checkpoint_file(local, map_location)
