"""Shared fixtures: generated toy datasets (no download) and a quiet, deterministic torch."""
import contextlib
import gc
import os
import socket
import sys
from pathlib import Path

import pytest
import tool_process
import torch
from shared_runs import build_once

REPO = Path(__file__).resolve().parents[1]

#: CPU threads of every process of the run. One process: 2. With pytest-xdist workers, the
#: cores divided among them (2 workers on 2 cores: 1 each), for the tools and launchers they
#: start too (OMP_NUM_THREADS and MKL_NUM_THREADS, inherited): more threads than cores make
#: every OpenMP barrier wait for a thread that has no core (seen here: a benchmark run of 225 s
#: with 2 threads per process took 80 s with 1).
WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
THREADS = max(1, min(2, torch.get_num_threads(), (os.cpu_count() or 1) // WORKERS))
torch.set_num_threads(THREADS)
if WORKERS > 1:
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(THREADS)


def free_port() -> int:
    """A TCP port nobody listens on now (for a distributed run's master: tests may run in
    parallel, so never a fixed one)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(*args, check=True, cwd=REPO, env=None, timeout=600, fresh=False):
    """Run ``python tools/...`` of this repo and return the CompletedProcess: a process of its
    own, forked from an interpreter that has imported the stack already (tool_process), or a
    fresh interpreter (``fresh=True``, and where the start itself is what differs)."""
    proc = tool_process.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                            timeout=timeout, fresh=fresh)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


@contextlib.contextmanager
def young_garbage_only():
    """For loops that start many runs in this process: each dataset the host builds runs
    ``gc.collect()`` (mmengine's ``_serialize_data``), which walks every object torch, mmdet and
    mmseg made (0.25-0.7 s a dataset). Call the yielded ``gc.freeze`` before each run: each
    collection then walks that run's own objects; the frozen ones are collected at the end."""
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
        gc.collect()


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A tiny toy COCO set and a tiny toy ADE20K set, generated once per test run (shared by
    the workers: read it, never write into it). Generated in this process by the tool's own
    ``main`` (its command line: tests/tools/test_make_toy_data.py and the demos)."""
    return build_once(tmp_path_factory, 'toy', lambda root: load_tool('make_toy_data').main(
        ['--root', str(root), '--num-train', '4', '--num-val', '2', '--size', '64']))


TOY_DET = 'configs/toy/maskrcnn_convnext_toy_coco.py'
TOY_SEG = 'configs/toy/upernet_convnext_toy_ade20k.py'


def toy_det_options(coco):
    """--cfg-options that point the toy Mask R-CNN at the toy COCO set ``coco``: batch 2 for
    training (4 images: two iterations an epoch), 1 for testing."""
    ann = f'{coco}/annotations/instances_val2017.json'
    return [*(f'{loader}.dataset.data_root={coco}/' for loader in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
            'train_dataloader.batch_size=2', 'val_dataloader.batch_size=1',
            'test_dataloader.batch_size=1']


def toy_seg_options(ade):
    """--cfg-options that point the toy UperNet at the toy ADE20K set ``ade``, batch 2."""
    return [*(f'{loader}.dataset.data_root={ade}' for loader in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')),
            'train_dataloader.batch_size=2']


@pytest.fixture(scope='session')
def trained_det_run(toy_root, tmp_path_factory):
    """The work dir of the toy Mask R-CNN trained one epoch (2 iterations) and validated by
    ``tools/train.py`` on the toy set: ``epoch_1.pth``, ``last_checkpoint``, the log with COCO
    metrics. Built once per test run for every test that needs a trained detector; read only
    (``shared_runs.copy_run`` for a writable copy)."""
    return build_once(tmp_path_factory, 'trained_det', lambda work: run_tool(
        REPO / 'tools' / 'train.py', TOY_DET, '--work-dir', work, '--cfg-options',
        *toy_det_options(toy_root / 'coco'), 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'))


@pytest.fixture(scope='session')
def trained_seg_run(toy_root, tmp_path_factory):
    """The work dir of the toy UperNet trained 2 iterations and validated by ``tools/train.py``
    on the toy set: ``iter_2.pth``, ``last_checkpoint``, the log with mIoU. Shared and read
    only, as :func:`trained_det_run`."""
    return build_once(tmp_path_factory, 'trained_seg', lambda work: run_tool(
        REPO / 'tools' / 'train.py', TOY_SEG, '--work-dir', work, '--cfg-options',
        *toy_seg_options(toy_root / 'ade' / 'ADEChallengeData2016'), 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2'))


@pytest.fixture(scope='session')
def host_config(tmp_path_factory):
    """Loads mmdet's/mmseg's installed config ('mmdet::...') the way users inherit it."""
    from mmengine.config import Config

    def load(base):
        path = tmp_path_factory.mktemp('cfg') / 'inherits_host_config.py'
        path.write_text(f'_base_ = [{base!r}]\n')
        return Config.fromfile(path)
    return load


def shipped_configs():
    """Every runnable config under configs/ (not the pieces in ``_base_``, not the toy demo
    configs, which the demo tests run), as paths relative to the repository root."""
    return sorted(p.relative_to(REPO).as_posix() for p in (REPO / 'configs').rglob('*.py')
                  if not {'_base_', 'toy', '__pycache__'} & set(p.relative_to(REPO).parts))


# One config per family and version in `make test-fast`; the others differ only in backbone
# size and are checked the same way by the full suite (reading a config through mmdet's/mmseg's
# base configs takes about 1.5 s).
FAMILY = ('maskrcnn_convnext_t_coco', 'cascade_maskrcnn_convnext_t_3x', 'upernet_convnext_t_160k',
          'maskrcnn_convnextv2_atto', 'upernet_convnextv2_atto', 'deeplabv3plus_convnext_t_os16',
          'mask2former_convnext_t_50e_coco', 'mask2former_convnext_t_160k',
          'dino_4scale_convnext_t')


def one_per_family_fast(configs):
    """``configs`` as pytest parameters: those outside :data:`FAMILY` marked slow."""
    return [c if any(f in c for f in FAMILY) else pytest.param(c, marks=pytest.mark.slow)
            for c in configs]


def load_tool(name):
    """Import ``tools/<name>.py`` as a module (tools/ is a folder of scripts, not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tools_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def toy_data_tool():
    return load_tool('make_toy_data')


@pytest.fixture(scope='session', autouse=True)
def host_model_index_parsed_once():
    """Every ``mmdet::``/``mmseg::`` base makes mmengine parse the host's whole model index again
    (its model-index.yml and every metafile: about 0.2 s, 80% of reading one of our configs).
    The files do not change during a test run, so parse each once: the same answers, config
    reads about 5x cheaper in the test processes (the tools' own processes are untouched)."""
    import functools

    from mmengine.config import utils
    original = utils.load
    utils.load = functools.lru_cache(maxsize=None)(original)
    yield
    utils.load = original


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """How two workers share the suite (pytest.ini: ``--dist loadscope``: each module is one
    unit of work, run by one worker, so a module-scoped fixture (a toy training, an installed
    wheel, an exported graph) is built once).

    The modules that hold end-to-end runs (marked slow) come first: the long units start early
    and the many short modules fill the end, so the two workers finish together instead of one
    waiting on a late long run. The tests themselves are unchanged; only the order differs."""
    first = {}
    for index, item in enumerate(items):
        module = item.nodeid.split('::')[0]
        first.setdefault(module, index)
        if item.get_closest_marker('slow') is not None:
            first[module] = min(first[module], index - len(items))
    order = {id(item): (first[item.nodeid.split('::')[0]], index)
             for index, item in enumerate(items)}
    items.sort(key=lambda item: order[id(item)])
