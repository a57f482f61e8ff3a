"""What our tools check in the data itself before the model is built (after ``checks``
has made sure the folders are there).

mmdet and mmseg read annotations and images lazily, deep inside dataset classes and data
loaders: a JSON syntax error is a traceback from the dataset's ``__init__``, an image that does
not decode is a crash in a pipeline transform minutes or hours into training, classes that
match no category silently give a dataset without objects, a head with fewer outputs than the
classes silently trains labels it cannot predict (or fails in the loss with an index error),
annotations mmdet cannot use are dropped without a word.
Here every such mistake is one :class:`DataError` naming the file (and position) and the fix,
and what the host would drop is said once.

What is checked, per dataset of a loader (wrappers such as RepeatDataset looked through), the
way the host reads it (``data.host_paths``: the dataset class built lazily by the host, the files
its pipeline's loading transforms read, each through mmengine's fileio with that transform's
``backend_args``). A check never refuses what the host would run; where it cannot know, it says
once what it did not check.

* COCO-style ``ann_file`` (a class that reads it with a COCO API), read through the dataset's
  ``backend_args``: parsed, with file, line and column of a syntax error; it must hold
  ``images``/``annotations``/``categories`` lists and at least one image;
  ``metainfo.classes`` must each name a category (a close name is suggested). The entries
  are audited as mmdet would read them (``data.coco_audit``, for classes that read them by
  ``CocoDataset``'s rules): a field mmdet would crash on is an error naming the entry; what it
  would drop (unknown categories, empty or outside boxes, empty polygons, images without
  annotations) is one warning line with counts and a first example; a training set left with
  nothing usable is an error.
* Any other dataset: its samples as the class lists them (an mmseg folder listed through the
  backend, a list file); an empty list is an error.
* The files the pipeline reads (images; label maps only where a transform loads segmentation,
  so instance-only COCO needs no panoptic folder): on the local disk every one exists and is
  not empty (one ``stat`` per file, seconds for COCO's 118k) and up to :data:`DECODE_LIMIT` of
  them, spread evenly over the list, decode; one the sample misses is named when the run loads
  it (the configs' pipelines load images with ``convnext_backbone.CheckedLoadImageFromFile``).
  A missing folder is a "not found" error saying how to get the data. On other storage (a URL,
  a registered backend) a spread sample of ``data.remote.REMOTE_SAMPLE`` files is fetched and
  decoded, and the startup line says so.
* A validation or test pipeline cannot skip undecodable images (``on_error='skip'``): its
  metric would silently change.
* The model's heads: each must predict exactly the dataset's classes (``metainfo.classes``,
  else the dataset class's own; ``head_classes``).
"""
import difflib
import json
import logging
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from ..data import host_paths, remote
from ..data.coco_audit import audit_coco
from ..data.errors import DataError
from ..data.image_files import missing_and_empty, sample_positions, undecodable
from .checks import dataset_not_found, loader_datasets, missing_part
from .head_classes import check_head_classes, dataset_classes

#: At most this many images of a dataset are decoded at startup, spread evenly over it (all of
#: a smaller set); every image is looked for.
DECODE_LIMIT = 200


def _shown(items: Sequence, limit: int = 3) -> str:
    items = list(items)
    return ', '.join(map(str, items[:limit])) + (f', ... ({len(items)} in all)'
                                                 if len(items) > limit else '')


def read_json(path: str, backend_args: Optional[dict] = None) -> object:
    """``json.load`` with the file, line and column of a syntax error in the message; a file on
    other storage than the local disk is read through mmengine's fileio with ``backend_args``
    (as the dataset reads it)."""
    try:
        backend, local = host_paths.storage(path, backend_args)
        if not local:
            return json.loads(remote.read_text(path, backend,
                                               host_paths.backend_name(backend, backend_args),
                                               f'backend_args={backend_args!r}'))
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise DataError(f'{path}:{error.lineno}:{error.colno}: the annotation file is not valid '
                        f'JSON ({error.msg}). Fix the file at that position, or regenerate/'
                        'download it again (a truncated copy ends early).') from None
    except UnicodeDecodeError as error:
        raise DataError(f'{path}: the annotation file is not UTF-8 text ({error.reason} at byte '
                        f'{error.start}): is it really the JSON file? Point ann_file at the '
                        'COCO-style .json.') from None


def check_images(paths: Sequence[str], where: str) -> None:
    """Every file exists and is not empty; up to DECODE_LIMIT of them, evenly spread, decode."""
    missing, empty = missing_and_empty(paths)
    if missing:
        raise DataError(f'{where}: {len(missing)} listed image(s) are missing: {_shown(missing)}. '
                        'Copy them there, or point data_root/data_prefix at the folder that '
                        'holds them.')
    if empty:
        raise DataError(f'{where}: {len(empty)} listed image(s) are empty files (0 bytes): '
                        f'{_shown(empty)}. Copy them again (an interrupted download or copy '
                        'leaves empty files), or remove them from the dataset.')
    for position in sample_positions(len(paths), DECODE_LIMIT):
        why = undecodable(paths[position])
        if why:
            raise DataError(f'{paths[position]} does not decode as an image ({why}). Replace the '
                            'file (re-download or re-export it), or remove it from the dataset.')


def _check_local_files(paths: Sequence[str], read: host_paths.Read, host, loader: str,
                       dataset: dict, where: str) -> None:
    """:func:`check_images` for files on the local disk; a folder of the dataset that is not
    there at all is a "not found" error saying how to get the data."""
    missing, _ = missing_and_empty(paths)
    if missing:
        folder = host_paths.prefix_of(host, missing[0])
        if folder and not osp.isdir(folder):
            raise dataset_not_found(loader, dataset, [missing_part(folder, host.data_root)])
        if read.key == 'seg_map_path':
            suffix = getattr(host, 'seg_map_suffix', '.png')
            raise DataError(f'{folder or where}: {len(missing)} image(s) have no label map: '
                            f'{_shown(missing)}. Each image needs its {suffix} label map of the '
                            'same name: add them, or remove those images.')
    check_images(paths, where)


def _coco_categories(ann_path: str, data: dict) -> List[str]:
    """The category names of a COCO-style annotation file, checked for its shape."""
    if not isinstance(data, dict) or not isinstance(data.get('images'), list) or \
            not isinstance(data.get('categories'), list):
        have = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise DataError(f'{ann_path} is not a COCO-style annotation file: it needs "images", '
                        f'"annotations" and "categories" lists (it has {have}). Point ann_file '
                        'at instances_*.json, or convert your annotations to COCO format.')
    if not data['images']:
        raise DataError(f'{ann_path}: the dataset is empty: its "images" list has no '
                        'entries. Point ann_file at the annotations of your images.')
    return [str(c.get('name')) for c in data['categories'] if isinstance(c, dict)]


def _class_names(cfg: Config, dataset: dict) -> Optional[Tuple[str, ...]]:
    """``metainfo.classes`` of the config, else the dataset class's own (None if unknown)."""
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes:
        return tuple(classes)
    return _default_classes(cfg, dataset)


def _default_classes(cfg: Config, dataset: dict) -> Optional[Tuple[str, ...]]:
    """The dataset class's own ``METAINFO['classes']`` (None if unknown)."""
    try:  # the host's registry (mmdet.registry / mmseg.registry) knows its dataset classes
        import importlib
        registry = importlib.import_module(f"{cfg.get('default_scope')}.registry")
        cls = registry.DATASETS.get(dataset.get('type'))
        return tuple(getattr(cls, 'METAINFO', {}).get('classes') or ()) or None
    except Exception:  # an unknown type is check_type_names' or the Runner's to report
        return None


def _check_classes(ann_path: str, classes: Optional[Sequence[str]], names: List[str],
                   dataset: dict) -> None:
    if not classes:
        return
    unknown = [c for c in classes if c not in names]
    if not unknown:
        return
    if not (dataset.get('metainfo') or {}).get('classes'):
        raise DataError(
            f'{ann_path}: {len(unknown)} of the {len(classes)} classes of '
            f'{dataset.get("type")} (its own: the config gives no metainfo.classes) match no '
            f'category of the file ({_shown(unknown)}); those classes would get no objects, and '
            f'the file\'s categories ({_shown(names, 6)}) would not be trained unless they are '
            'among them. Give the dataset metainfo=dict(classes=(...)) with the category names '
            'you train (and every head num_classes=len(classes)).')
    hints = []
    for name in unknown[:3]:
        close = difflib.get_close_matches(name, names, n=1)
        hints.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    raise DataError(
        f'metainfo.classes: {len(unknown)} of {len(classes)} classes match no category of '
        f'{ann_path}: {", ".join(hints)}; those classes would get no objects. Its categories '
        f'are: {_shown(names, 12)}. Spell the classes as the categories are named.')


def check_num_classes(cfg: Config, classes: Sequence[str], loader: str,
                      dataset: Optional[dict] = None) -> None:
    """Every head predicts exactly the dataset's classes (``head_classes``)."""
    check_head_classes(cfg, loader, dataset_classes(cfg, dataset or {}, classes))


def _pipeline_steps(dataset: dict) -> Iterator[dict]:
    for step in dataset.get('pipeline') or ():
        if isinstance(step, dict):
            yield step


def _loads_masks(dataset: dict) -> bool:
    """Whether the dataset's pipeline loads instance masks (LoadAnnotations with_mask=True)."""
    return any(str(step.get('type', '')).endswith('LoadAnnotations') and step.get('with_mask')
               for step in _pipeline_steps(dataset))


def check_pipeline(dataset: dict, loader: str) -> None:
    """A test-mode dataset cannot skip an undecodable image (mmengine raises, the metric would
    change): ``on_error='skip'`` belongs in training pipelines only."""
    if not dataset.get('test_mode'):
        return
    for step in _pipeline_steps(dataset):
        if str(step.get('type', '')).endswith('CheckedLoadImageFromFile') and \
                step.get('on_error') == 'skip':
            raise DataError(f"{loader}: on_error='skip' in a validation/test pipeline: a test "
                            'cannot leave images out (its metric would change). Keep '
                            "on_error='stop' there (skip only in train_dataloader's pipeline).")


def _note(loader: str, text: str) -> None:
    print_log(f'{loader}: {text}', logger='current')


def _check_coco_file(cfg: Config, dataset: dict, host, classes, loader: str) -> dict:
    """The COCO-style file the class reads: parsed, its classes, heads and entries checked."""
    ann_path = host.ann_file
    data = read_json(ann_path, getattr(host, 'backend_args', None))
    names = _coco_categories(ann_path, data)
    _check_classes(ann_path, classes, names, dataset)
    if classes:
        check_num_classes(cfg, classes, loader, dataset)
    if not host_paths.audited_as_coco(host):
        _note(loader, f'{type(host).__name__} reads {ann_path} by its own rules: its entries are '
                      "not audited by CocoDataset's rules.")
        return data
    audit = audit_coco(data, ann_path, classes, with_mask=_loads_masks(dataset),
                       training=not dataset.get('test_mode', False),
                       filter_cfg=dataset.get('filter_cfg'))
    if audit.warning():
        print_log(f'{loader}: {audit.warning()}', logger='current', level=logging.WARNING)
    return data


def _samples(host, coco, loader: str, dataset: dict) -> List[dict]:
    """The samples as the class lists them; a local folder it lists that is not there at all
    is a "not found" error."""
    try:
        infos = host_paths.data_infos(host, coco, f'{loader}.dataset')
    except DataError:
        missing = [missing_part(folder, host.data_root)
                   for folder in (getattr(host, 'data_prefix', None) or {}).values()
                   if isinstance(folder, str) and folder and
                   host_paths.storage(folder, getattr(host, 'backend_args', None))[1] and
                   not osp.isdir(folder)]
        if missing:
            raise dataset_not_found(loader, dataset, sorted(set(missing)))
        raise
    if not infos:
        folder = (getattr(host, 'data_prefix', None) or {}).get('img_path', host.ann_file)
        suffix = getattr(host, 'img_suffix', None)
        raise DataError(f'{folder}: the dataset is empty: ' +
                        (f'no {suffix} image in it. Put the images there, or fix '
                         'data_prefix.img_path / img_suffix in the config.' if suffix else
                         f'{type(host).__name__} lists no sample. Point the config at the '
                         'data (data_root, data_prefix, ann_file).'))
    return infos


def _check_reads(host, infos: List[dict], loader: str, dataset: dict, where: str) -> None:
    """Each file the pipeline reads, where the run reads it (local: all; else: a sample)."""
    reads, unknown = host_paths.reads(host)
    if unknown:
        _note(loader, f'{", ".join(unknown)} read with file_client_args (not backend_args): '
                      'the files they read are not checked.')
    if not reads and not unknown:
        _note(loader, f'the pipeline of {type(host).__name__} has no transform known to load '
                      'files (LoadImageFromFile, LoadAnnotations): its files are not checked.')
    for read in reads:
        paths = [info[read.key] for info in infos if isinstance(info.get(read.key), str)]
        cache: dict = {}
        local, elsewhere = [], {}
        for path in paths:
            backend, is_local = host_paths.storage(path, read.backend_args, cache)
            if is_local:
                local.append(path)
            else:
                elsewhere.setdefault(id(backend), (backend, []))[1].append(path)
        if local:
            _check_local_files(local, read, host, loader, dataset, where)
        for backend, some in elsewhere.values():
            name = host_paths.backend_name(backend, read.backend_args)
            how = f'{read.transform} with backend_args={read.backend_args!r}'
            _note(loader, remote.check_remote_files(some, backend, name, read.what, how))


def check_data(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise :class:`DataError` for the first problem in the loaders' data (module docstring);
    log what mmdet would drop from a COCO file, one line per dataset, and what is not checked."""
    scope = cfg.get('default_scope')
    for loader, dataset in loader_datasets(cfg, loaders):
        if 'dataset' in dataset or 'datasets' in dataset:
            continue  # a wrapper: its inner datasets come next
        classes = _class_names(cfg, dataset)
        check_pipeline(dataset, loader)
        host = host_paths.build(dataset, scope, f'{loader}.dataset')
        if host is None:
            _note(loader, f'{dataset.get("type")} is not an mmengine BaseDataset: which files it '
                          'reads is not known here, so they are not checked.')
            if classes:
                check_num_classes(cfg, classes, loader, dataset)
            continue
        coco = _check_coco_file(cfg, dataset, host, classes, loader) \
            if host_paths.reads_coco_file(host) else None
        infos = _samples(host, coco, loader, dataset)
        if coco is None and classes:
            check_num_classes(cfg, classes, loader, dataset)
        _check_reads(host, infos, loader, dataset, host.ann_file or
                     (host.data_prefix or {}).get('img_path') or host.data_root)
