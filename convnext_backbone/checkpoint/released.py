"""The paper's released models: which checkpoint goes with which config, read from the model index.

The model index (``model-index.yml`` and the ``configs/*/metafile.yml`` files it imports; shipped
in the package as ``convnext_backbone/.mim/``, what ``mim search`` and ``mim download`` read) is
the one release table: an entry's ``Weights`` is the URL of the checkpoint released for its
``Config``, its ``Results`` the paper's numbers. Nothing here repeats a URL.

* ``tools/test.py CONFIG released`` evaluates the released weights of CONFIG:
  :func:`checkpoint_argument` finds CONFIG's entry (by path; a copy elsewhere, such as the config
  ``mim download`` writes, by its file name, which is the entry's name), downloads the weights
  once into torch hub's cache (:mod:`.download`) and hands the tool the local file, which the
  tool then loads through the safe loader and checks tensor by tensor against the model.
* ``CONVNEXT_RELEASE_BASE``: a folder URL (``http(s)://`` or ``file://``) to fetch the released
  files from instead of their published address, by file name: a mirror, an intranet server, a
  shared folder holding the downloaded files.
* ``CONVNEXT_MODEL_INDEX``: further model-index files (separated by ``os.pathsep``) read before the
  shipped one, in the same format: released weights for your own configs. A relative ``Config``
  path in them is relative to the index file's folder.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List

from .download import download, file_name, is_url
from .errors import CheckpointReadError, NoReleasedWeightsError

#: The checkpoint argument that means "the released weights of this config".
RELEASED = 'released'
RELEASE_BASE_ENV = 'CONVNEXT_RELEASE_BASE'
MODEL_INDEX_ENV = 'CONVNEXT_MODEL_INDEX'
SHIPPED_INDEX = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim',
                         'model-index.yml')


@dataclass
class Release:
    """One model index entry with released weights."""
    name: str
    config: str  # absolute path
    weights: str  # the published URL
    results: List[dict] = field(default_factory=list)
    index: str = SHIPPED_INDEX

    def url(self) -> str:
        """Where to fetch the weights: the published URL, or the same file name under
        ``$CONVNEXT_RELEASE_BASE``."""
        base = os.environ.get(RELEASE_BASE_ENV, '').strip()
        if not base:
            return self.weights
        if not is_url(base):
            raise CheckpointReadError(
                f'{RELEASE_BASE_ENV}={base!r} is not a folder URL: give an http://, https:// or '
                'file:// address of the folder holding the released files.')
        return f'{base.rstrip("/")}/{file_name(self.weights)}'

    def paper_results(self) -> str:
        """``'box AP 46.2, mask AP 41.7'``: the metrics the index gives, in order."""
        return ', '.join(f'{key} {value}' for result in self.results
                         for key, value in (result.get('Metrics') or {}).items())


def _read_yaml(path: str) -> dict:
    import yaml
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def index_files() -> List[str]:
    """The model-index files consulted, first match wins: ``$CONVNEXT_MODEL_INDEX``, then ours."""
    extra = [p for p in os.environ.get(MODEL_INDEX_ENV, '').split(os.pathsep) if p.strip()]
    for path in extra:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{MODEL_INDEX_ENV} names {path}, which does not exist: '
                                    'give model-index.yml files (separated by '
                                    f'{os.pathsep!r}), or unset it.')
    return [osp.abspath(p) for p in extra] + [SHIPPED_INDEX]


def releases() -> List[Release]:
    """Every entry with ``Weights`` in the consulted model indexes, in order."""
    found = []
    for index in index_files():
        if not osp.isfile(index):  # an installation without its .mim folder
            continue
        folder = osp.dirname(index)
        for metafile in _read_yaml(index).get('Import', []):
            for model in _read_yaml(osp.join(folder, metafile)).get('Models', []) or []:
                if model.get('Weights') and model.get('Config'):
                    found.append(Release(
                        name=model['Name'], config=osp.join(folder, model['Config']),
                        weights=model['Weights'], results=model.get('Results') or [],
                        index=index))
    return found


def find_release(config: str) -> Release:
    """The entry whose config is ``config`` (the same file, else the same name)."""
    known = releases()
    real = osp.realpath(config)
    for release in known:
        if osp.realpath(release.config) == real:
            return release
    stem = osp.splitext(osp.basename(config))[0]
    for release in known:
        if release.name == stem:
            return release
    names: Dict[str, None] = dict.fromkeys(r.name for r in known)
    raise NoReleasedWeightsError(
        f'{config}: no released weights are listed for this config. `{RELEASED}` names the '
        f'weights released for the configs {", ".join(names)} (model-index.yml; '
        f'{MODEL_INDEX_ENV} adds your own index). For another config give a checkpoint file or '
        'URL instead (the released URLs: docs/model_zoo.md, `mim search convnext_backbone '
        '--field weight`).')


def released_weights(config: str) -> str:
    """The URL of the weights released for ``config`` (``$CONVNEXT_RELEASE_BASE`` applied): what
    to give ``init_detector`` / ``init_model`` / the inferencers, which download it through the
    same checked path once ``convnext_backbone`` is imported."""
    return find_release(config).url()


def checkpoint_argument(value: str, config: str, flag: str = 'CHECKPOINT',
                        fetch: bool = True) -> str:
    """A tool's checkpoint argument as a local file: ``released`` (the weights released for
    ``config``), an ``http(s)://`` or ``file://`` URL (downloaded once into torch hub's cache), or
    a path. The file is checked to be complete and safe to load (or trusted) before the tool
    builds anything; the tool's load then checks every tensor against the model.

    ``fetch=False``: everything but the transfer, for a tool that checks its data before a long
    download: ``released`` becomes its URL, a path is checked, a URL is returned as it is (call
    again with it to download)."""
    from mmengine.logging import print_log

    from .files import check_checkpoint_file
    if value == RELEASED:
        release = find_release(config)
        value = release.url()
        results = release.paper_results()
        print_log(f'{release.name}: the released weights {value}'
                  + (f' (the paper: {results})' if results else ''), logger='current')
    if is_url(value):
        if not fetch:
            return value
        value = download(value)
    elif not osp.exists(value):
        raise FileNotFoundError(
            f'{flag}: checkpoint {value} does not exist. Give the path of a .pth file (e.g. '
            'work_dirs/<config name>/epoch_12.pth), an http(s):// URL, or '
            f'`{RELEASED}` for the weights released with the config.')
    check_checkpoint_file(value, flag)
    return value
