"""Which files a dataset makes the host read, where, and through which storage: asked of the host.

mmengine's datasets join ``data_root`` with ``ann_file`` and ``data_prefix`` by their own rule (a
URL or an absolute path is kept as it is), the dataset class makes each sample's paths by its own
rule (mmdet's instance datasets set a label-map path from ``data_prefix.seg`` that only a
pipeline loading segmentation reads), and the pipeline's loading transforms read those paths
through mmengine's fileio with their ``backend_args`` (local disk, HTTP, an object store a
backend is registered for). A check that rebuilds paths with ``os.path`` beside that refuses
runs the host would do. Here every answer comes from the host:

* :func:`build`: the config's dataset class, built lazily by the host's registry
  (``lazy_init=True``: nothing read yet): the joined ``ann_file`` and prefixes, its
  ``backend_args``, its pipeline as built transforms. ``None`` where the class is not an
  mmengine ``BaseDataset`` (then nothing here can know what it reads).
* :func:`reads`: the sample keys the pipeline's loading transforms read (``img_path`` by an
  image-loading transform, ``seg_map_path`` by one loading segmentation: ``with_seg``, or panoptic
  masks), each with that transform's ``backend_args``.
* :func:`data_infos`: the samples as the class makes them: from a parsed COCO-style file through
  the class's own ``parse_data_info`` (cheap: no second parse of a large file), otherwise the
  class's ``load_data_list`` (a listing of a folder through the backend, a list file, ...).
* :func:`storage`: the fileio backend a path is read through, and whether it is the local disk.
"""
import copy
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from .errors import DataError


@dataclass(frozen=True)
class Read:
    """A sample key the pipeline reads files from, and how."""
    key: str  # 'img_path' or 'seg_map_path'
    what: str  # 'images' or 'label maps'
    backend_args: Optional[dict]
    transform: str  # the class name of the transform that reads it


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f'{type(error).__name__}: {lines[0][:300]}' if lines else type(error).__name__


def build(dataset_cfg: dict, scope: Optional[str], where: str):
    """The dataset of ``dataset_cfg`` built lazily by the host's registry under ``scope``; None
    when its class is unknown or not an mmengine ``BaseDataset``. A class that fails to build is
    a :class:`DataError` with the host's reason (the Runner's build would fail the same way)."""
    from mmengine.dataset import BaseDataset
    from mmengine.registry import DATASETS, DefaultScope
    cfg = copy.deepcopy(dict(dataset_cfg))
    with DefaultScope.overwrite_default_scope(scope):
        with DATASETS.switch_scope_and_registry(cfg.get('_scope_')) as registry:
            try:
                cls = registry.get(cfg.get('type'))
            except Exception:  # an unknown scope or name: the loader check's to report
                cls = None
            if not (isinstance(cls, type) and issubclass(cls, BaseDataset)):
                return None
            cfg['lazy_init'] = True
            try:
                return registry.build(cfg)
            except DataError:
                raise
            except Exception as error:
                raise DataError(f'{where} ({cfg.get("type")}) cannot be built '
                                f'({_reason(error)}); the Runner builds it the same way. Fix the '
                                'dataset settings the message names.') from None


def _transforms(node, seen=None) -> Iterator[object]:
    """Every transform of a built pipeline, those inside RandomChoice / Compose too."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    yield node
    inner = getattr(node, 'transforms', None)
    if isinstance(inner, (list, tuple)):
        for item in inner:
            yield from _transforms(item, seen)


def _seg_holds_masks(transform) -> bool:
    """mmdet's LoadPanopticAnnotations reads the panoptic PNG for masks as well as for
    segmentation."""
    try:
        from mmdet.datasets.transforms import LoadPanopticAnnotations
    except ImportError:
        return False
    return isinstance(transform, LoadPanopticAnnotations)


def reads(dataset) -> Tuple[List[Read], List[str]]:
    """``(reads, unknown)``: the sample keys the dataset's pipeline reads files from (see the
    module's docstring), and the names of loading transforms whose reading cannot be told (an
    old ``file_client_args`` instead of ``backend_args``)."""
    from mmcv.transforms import LoadAnnotations, LoadImageFromFile
    found: Dict[str, Read] = {}
    unknown = []
    for transform in _transforms(getattr(dataset, 'pipeline', None)):
        name = type(transform).__name__
        if isinstance(transform, LoadImageFromFile):
            read = Read('img_path', 'images', transform.backend_args, name)
        elif isinstance(transform, LoadAnnotations) and (
                transform.with_seg or (transform.with_mask and _seg_holds_masks(transform))):
            read = Read('seg_map_path', 'label maps', transform.backend_args, name)
        else:
            continue
        if getattr(transform, 'file_client_args', None) is not None:
            unknown.append(name)
            continue
        found.setdefault(read.key, read)
    return list(found.values()), unknown


def reads_coco_file(dataset) -> bool:
    """Whether the class reads its ``ann_file`` with a COCO API (mmdet's CocoDataset family)."""
    return getattr(type(dataset), 'COCOAPI', None) is not None and bool(dataset.ann_file)


def audited_as_coco(dataset) -> bool:
    """Whether the class turns COCO entries into samples by mmdet's ``CocoDataset`` rules, which
    ``coco_audit`` applies (a subclass with its own ``parse_data_info``, e.g. panoptic or LVIS,
    reads other fields)."""
    try:
        from mmdet.datasets import CocoDataset
    except ImportError:
        return False
    return isinstance(dataset, CocoDataset) and \
        type(dataset).parse_data_info is CocoDataset.parse_data_info


def data_infos(dataset, coco: Optional[dict], where: str) -> List[dict]:
    """The samples' ``data_info`` dicts as the dataset class makes them (module docstring).
    A class that cannot make them is a :class:`DataError` with its reason: the Runner's
    ``full_init`` runs the same code."""
    infos: List[dict] = []
    try:
        if coco is not None:
            try:
                for image in coco['images']:
                    info = dataset.parse_data_info(
                        {'raw_img_info': {**image, 'img_id': image['id']}, 'raw_ann_info': []})
                    infos.extend(info if isinstance(info, list) else [info])
                return infos
            except Exception:  # a class that needs load_data_list's state: ask it in full
                infos = []
        for info in dataset.load_data_list():
            infos.extend(info if isinstance(info, list) else [info])
    except DataError:
        raise
    except Exception as error:
        raise DataError(f'{where}: {type(dataset).__name__} cannot list its samples '
                        f'({_reason(error)}); '
                        'the Runner lists them the same way, so the run would fail there. Fix '
                        'data_root / data_prefix / ann_file, or read the data through a backend '
                        'that can list folders (backend_args), or give an ann_file listing '
                        'the samples.') from None
    return infos


def storage(path: str, backend_args: Optional[dict], cache: Optional[dict] = None):
    """``(backend, is_local)``: the fileio backend ``path`` is read through with
    ``backend_args`` (mmengine's own choice: the backend named in the arguments, else the path's
    ``scheme://`` prefix, else the local disk)."""
    from mmengine.fileio import LocalBackend, get_file_backend
    scheme = path.split('://', 1)[0] if '://' in path else ''
    if cache is not None and scheme in cache:
        return cache[scheme]
    try:
        backend = get_file_backend(path, backend_args=dict(backend_args or {}))
    except Exception as error:
        joined = '://' in path and '/' in path.split('://', 1)[0]
        hint = (" It is a URI with a folder in front of it: mmengine joins data_root in front of "
                "every prefix but http(s):// and s3:// ones; put the URI in data_root and keep "
                "data_prefix relative, or write data_root=''." if joined else
                ' Fix the path or backend_args, or register the backend '
                '(mmengine.fileio.register_backend).')
        raise DataError(f'{path}: mmengine\'s fileio has no storage backend for it '
                        f'({_reason(error)}; backend_args={backend_args!r}); the run reads it '
                        f'through fileio the same way.{hint}') from None
    answer = backend, isinstance(backend, LocalBackend)
    if cache is not None:
        cache[scheme] = answer
    return answer


def backend_name(backend, backend_args: Optional[dict]) -> str:
    """How a message names a backend: the registered name given in backend_args, else its
    class (e.g. HTTPBackend)."""
    named = (backend_args or {}).get('backend')
    return f"backend '{named}'" if named else type(backend).__name__


def prefix_of(dataset, path: str) -> Optional[str]:
    """The dataset's (joined) ``data_prefix`` folder that ``path`` lies in, the longest one."""
    prefixes = [p for p in (getattr(dataset, 'data_prefix', None) or {}).values()
                if isinstance(p, str) and p and path.startswith(p)]
    return max(prefixes, key=len) if prefixes else None
