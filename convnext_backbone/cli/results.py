"""Results of ``tools/test.py --out``: never replaced silently, written atomically.

* Detection (mmdet configs): ``--out`` is a ``.pkl`` file, written by mmdet's
  ``DumpDetResults`` metric.
* Segmentation (mmseg configs): ``--out`` is a folder of label maps, one ``<image name>.png``
  per test image, written by mmseg's ``IoUMetric(output_dir=...)``.

The rule is the checkpoints' (``engine.checkpoint_hook.refuse_earlier_checkpoints``,
``tools/train.py --overwrite-checkpoints``): a results file that exists, or a results folder
that is not empty, is refused before anything is built, with one line naming another ``--out``
and ``--overwrite-results``. With ``--overwrite-results`` a file is replaced; a folder is
replaced as a whole (no label maps of an earlier test left among this one's), and only when it
holds nothing but ``.png`` files: a folder with anything else in it (``--out .``, a work dir)
is refused even then, as it is not a results folder and we never delete what is not results.

Written atomically: the results go to a temporary beside the target (a file through
``checkpoint.files.atomic_target``, a folder ``.<name>.partial``) that takes the target's name
only when the test has finished, so an interrupted or failed test leaves the earlier results as
they were and no partial ones under the name.
"""
import contextlib
import os
import os.path as osp
import shutil
from typing import Iterator, List, Optional

from ..checkpoint.files import atomic_target

FLAG = '--overwrite-results'
FLAG_HELP = ("write --out where an earlier test's results are (a .pkl file, a folder of label "
             'maps), replacing them (without it such a run is refused)')


class ResultsExistError(FileExistsError):
    """``--out`` names results of an earlier test, which this test would replace."""


def is_detection(cfg) -> bool:
    return cfg.get('default_scope') == 'mmdet'


def configure(cfg, out: str) -> None:
    """Point the config's test evaluator at ``out`` (mmdet: ``DumpDetResults`` added to the
    evaluators; mmseg: ``IoUMetric``'s ``output_dir``)."""
    if is_detection(cfg):
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out for detection must be a .pkl file (the detections are '
                             f'pickled), got {out}: use e.g. --out results.pkl')
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
            else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dict(type='DumpDetResults', out_file_path=out)]
    else:
        cfg.test_evaluator.update(output_dir=out, keep_results=True)


def _entries(folder: str) -> List[str]:
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


def check_target(cfg, out: str, overwrite: bool) -> None:
    """Raise :class:`ResultsExistError` when ``out`` holds earlier results and ``overwrite`` is
    not given (or, for a folder, when it holds anything but label maps)."""
    if is_detection(cfg):
        if osp.isdir(out):
            raise ResultsExistError(f'--out {out} is a folder: detection results are one .pkl '
                                    'file; use e.g. --out results.pkl')
        if osp.exists(out) and not overwrite:
            raise ResultsExistError(
                f'--out {out} holds the results of an earlier test, which this test would '
                f'replace. Write them to another --out, or replace them on purpose with '
                f'tools/test.py {FLAG}.')
        return
    if osp.exists(out) and not osp.isdir(out):
        raise ResultsExistError(f'--out {out} is a file: segmentation results are a folder of '
                                'label maps; give a folder, e.g. --out work_dirs/label_maps')
    found = _entries(out)
    others = [name for name in found if not (name.endswith('.png') and
                                             osp.isfile(osp.join(out, name)))]
    if others:
        raise ResultsExistError(
            f'--out {out} holds other files than label maps ({", ".join(others[:3])}'
            f'{", ..." if len(others) > 3 else ""}): give an empty or new folder for the '
            f'label maps ({FLAG} replaces only a folder of label maps).')
    if found and not overwrite:
        raise ResultsExistError(
            f'--out {out} holds {len(found)} label maps of an earlier test, which this test '
            f'would replace. Write them to another --out, or replace the folder on purpose '
            f'with tools/test.py {FLAG}.')


def _retarget(cfg, temporary: str) -> None:
    """The evaluator that :func:`configure` pointed at ``--out`` writes to ``temporary``."""
    if is_detection(cfg):
        for metric in cfg.test_evaluator:
            if metric.get('type') == 'DumpDetResults':
                metric['out_file_path'] = temporary
    else:
        cfg.test_evaluator['output_dir'] = temporary


@contextlib.contextmanager
def written_atomically(cfg, out: Optional[str], main: bool = True) -> Iterator[None]:
    """Run the test inside: its results reach ``out`` only if it finishes (see the module's
    docstring). ``main``: this process writes the file (rank 0; the others only write label
    maps into the shared temporary folder)."""
    if not out:
        yield
        return
    if is_detection(cfg):
        if not main:  # mmdet dumps on rank 0 only
            yield
            return
        with atomic_target(out, keep_suffix=True) as temporary:
            _retarget(cfg, temporary)
            yield
        return
    folder, name = osp.split(osp.abspath(out))
    partial = osp.join(folder, f'.{name}.partial')
    if main:
        shutil.rmtree(partial, ignore_errors=True)  # a killed test's leftovers
        os.makedirs(partial)
    _retarget(cfg, partial)
    try:
        yield
    except BaseException:
        if main:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    if main:
        _swap_in(partial, out)


def _swap_in(partial: str, out: str) -> None:
    """``partial`` becomes ``out``; an earlier ``out`` (label maps only: checked at startup)
    is moved aside first and removed once the new folder has its name."""
    old = None
    if osp.isdir(out):
        old = f'{partial[:-len(".partial")]}.old'
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(partial, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)
