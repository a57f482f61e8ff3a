"""Generative: valid runs nobody listed, made by rule (valid_variants.py), each started both ways,
in process: through the host's own path (mmengine's Runner built from the config's data sections,
with mmdet/mmseg datasets and pipelines, trained to its first iteration; the val or test loader
built by the Runner's builder and read to its first batch) and through our tools' startup
(``tools/train.py`` / ``tools/test.py``: ``startup(argv)``, everything they do before the Runner).

A check never refuses what the host would run: wherever the host starts, ours must start too,
and where the host itself fails, ours must fail with one line (an error our tools print as it
is). Runs whose images are not on the local disk must say in the startup log what was fetched.
The host runs the cheapest model (its loss reads every image of the batch after the config's own
data preprocessor) for the data variants, and each toy config with its own model.

The whole set is one test (the variants share one HTTP server, one registered store, the data
and the base configs); its time and outcomes are printed (pytest -s).
"""
import contextlib
import copy
import itertools
import logging
import time
import traceback
from pathlib import Path

import pytest
import torch
import valid_variants as vv
from host_storage import register_store, served
from mmengine.config import ConfigDict
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

from convnext_backbone.cli import USER_ERRORS, error_line

from conftest import REPO, load_tool, young_garbage_only

INSTANCE_CONFIGS = {
    'maskrcnn': 'configs/maskrcnn_convnext_t_coco.py',
    'cascade_maskrcnn': 'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_t_3x_coco.py',
    'mask2former': 'configs/mask2former/mask2former_convnext_t_50e_coco.py',
    'dino': 'configs/dino/dino_4scale_convnext_t_12e_coco.py'}
_ids = itertools.count()


@MODELS.register_module(force=True)
class FirstBatchModel(BaseModel):
    """The cheapest model a Runner trains: its loss is the mean of the preprocessed batch."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        images = inputs if torch.is_tensor(inputs) else torch.stack(list(inputs))
        return dict(loss=self.scale * images.float().mean())


class HostRunner(Runner):
    """mmengine's Runner without its environment report (which runs compilers in subprocesses
    to print their versions; nothing of the data path)."""

    def _log_env(self, env_cfg):
        pass


def host_start(variant: vv.Variant, work_dir: Path):
    """``('started', '')`` or ``('failed', reason)``: the host's own path up to its first
    iteration (module docstring)."""
    cfg = variant.cfg
    try:
        with DefaultScope.overwrite_default_scope(cfg['default_scope']):
            if variant.tool == 'train':
                model = ConfigDict(cfg['model']) if variant.own_model else dict(
                    type='mmengine.FirstBatchModel',
                    data_preprocessor=copy.deepcopy(cfg['model'].get('data_preprocessor')))
                HostRunner(
                    model=model, work_dir=str(work_dir), experiment_name=f'host{next(_ids)}',
                    train_dataloader=copy.deepcopy(cfg['train_dataloader']),
                    train_cfg=dict(by_epoch=False, max_iters=1),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
                    default_scope=cfg['default_scope'], log_level='WARNING',
                    default_hooks=dict(checkpoint=None, logger=None),
                    randomness=dict(seed=0)).train()
            loader = 'val_dataloader' if variant.tool == 'train' else 'test_dataloader'
            next(iter(Runner.build_dataloader(copy.deepcopy(cfg[loader]), seed=0)))
    except Exception as error:
        return 'failed', f'{type(error).__name__}: {str(error)[:300]}'
    return 'started', ''


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def our_start(variant: vv.Variant, path: Path, work_dir: Path, tools: dict, checkpoint: Path):
    """``('started', log)``, ``('refused', line)`` or ``('traceback', text)``: the tool's startup,
    in process, with a logger of its own (as a fresh tool process has) whose lines are kept."""
    tool, extra = tools[variant.tool]
    argv = [str(path), *([str(checkpoint)] if variant.tool == 'test' else []),
            '--work-dir', str(work_dir)]
    logger = MMLogger.get_instance(f'ours{next(_ids)}', log_level='INFO')
    lines = _Lines()
    logger.addHandler(lines)
    try:
        with tool.startup(argv):
            pass
    except Exception as error:
        if isinstance(error, USER_ERRORS + extra):
            return 'refused', error_line(error)
        return 'traceback', traceback.format_exc()
    finally:
        logger.removeHandler(lines)
    return 'started', '\n'.join(lines.lines)


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in cfg.items()),
                    encoding='utf-8')
    return path


def _base(path) -> dict:
    from mmengine.config import Config
    return Config.fromfile(REPO / path).to_dict()


@pytest.fixture(scope='module')
def world(tmp_path_factory, toy_data_tool):
    """The data of every storage (one local folder, served over HTTP and held by a registered
    store), the toy sets, the base configs and a checkpoint file for tools/test.py."""
    from mmdet.datasets import CocoDataset
    root = tmp_path_factory.mktemp('valid_variants')
    data = root / 'data'
    vv.coco_sets(data)
    coco80 = CocoDataset.METAINFO['classes']
    vv.coco_sets(data / 'coco80', coco80, coco80[:4], styles=('plain',))
    vv.seg_set(data / 'seg')
    toy = root / 'toy'
    toy_data_tool.make_toy_coco(toy, size=64, num_train=4, num_val=2)
    toy_data_tool.make_toy_ade(toy, size=64, num_train=4, num_val=2)
    register_store(vv.BUCKET, data)
    checkpoint = root / 'model.pth'
    torch.save({'state_dict': {}, 'meta': {}}, checkpoint)
    tools = {'train': (load_tool('train'), ()), 'test': (load_tool('test'), (ValueError,))}
    bases = dict(det=_base('configs/toy/maskrcnn_convnext_toy_coco.py'),
                 seg=_base('configs/toy/upernet_convnext_toy_ade20k.py'),
                 instance={name: _base(path) for name, path in INSTANCE_CONFIGS.items()},
                 toys={p.stem: _base(p.relative_to(REPO))
                       for p in sorted((REPO / 'configs' / 'toy').glob('*.py'))})
    with served(data) as url:
        yield dict(world=vv.World(data, url), toy=toy, checkpoint=checkpoint, tools=tools,
                   bases=bases, root=root)


def all_variants(w) -> list:
    world, bases = w['world'], w['bases']
    return (vv.detection(world, bases['det']) + vv.segmentation(world, bases['seg']) +
            vv.instance_heads(world, bases['instance']) +
            vv.toys(bases['toys'], w['toy'] / 'coco', w['toy'] / 'ade' / 'ADEChallengeData2016'))


@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_valid_variants_start_wherever_the_host_starts(world, tmp_path):
    variants = all_variants(world)
    outcomes, seconds = {}, {}
    start = time.perf_counter()
    with one_thread(), young_garbage_only() as freeze:
        for i, variant in enumerate(variants):
            freeze()
            began = time.perf_counter()
            path = write_config(variant.cfg, tmp_path / f'variant{i}.py')
            host = host_start(variant, tmp_path / f'host{i}')
            ours = our_start(variant, path, tmp_path / f'ours{i}', world['tools'],
                             world['checkpoint'])
            outcomes[variant.name] = (variant, host, ours)
            seconds[variant.name] = time.perf_counter() - began
    total = time.perf_counter() - start
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:5]
    host_failed = [name for name, (_, host, _) in outcomes.items() if host[0] == 'failed']
    print(f'\n{len(variants)} valid variants in {total:.1f} s; the host fails on '
          f'{len(host_failed)}; slowest: ' + ', '.join(f'{n} {s:.1f} s' for n, s in slowest))
    for name in host_failed:
        print(f'  host fails: {name}: {outcomes[name][1][1][:160]}\n    ours: '
              f'{outcomes[name][2][1][:300]}')

    problems = []
    for name, (variant, (host, why), (ours, said)) in outcomes.items():
        if ours == 'traceback':
            problems.append(f'{name}: our startup raised an unexpected error:\n{said[-1500:]}')
        elif host == 'started' and ours != 'started':
            problems.append(f'{name}: the host starts, ours refuses: {said}')
        elif host == 'failed' and ours != 'refused':
            problems.append(f'{name}: the host fails ({why}); ours starts')
        elif ours == 'started' and variant.remote and 'fetched and decoded' not in said:
            problems.append(f'{name}: images elsewhere, but the startup log does not say what '
                            f'was fetched:\n{said}')
    assert not problems, f'{len(problems)} of {len(variants)}:\n' + '\n\n'.join(problems)
    assert len(variants) >= 100
    # the set holds both kinds: runs the host starts and runs it refuses
    assert len(host_failed) >= 5 and len(variants) - len(host_failed) >= 90
