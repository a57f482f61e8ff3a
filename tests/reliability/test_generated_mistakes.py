"""Generative: mistakes nobody listed, made by rule (mistakes.py) from the toy detection config
and a toy COCO set, each run through tools/train.py's own startup (argument parsing, config
loading and preparation, every check) in process, and, when the tool accepts it, through what
the Runner builds next (the data loaders and a first batch, the model, the optimizer, the hooks,
one training step) with mmengine's own builders.

Each variant must end in one ``error: ...`` line (what ``run_tool`` prints), or in a correct
run: a first batch with objects and a finite loss. A traceback at startup, an exception from
the Runner's builders or a non-finite/empty result is a finding. Findings not fixed yet are
listed in :data:`KNOWN`, each with its reason; they may pass (the list shrinks when they are
fixed). A few variants also run as real subprocesses, to prove the in-process path is the
tool's behaviour."""
import copy
import json
import math
import shutil
import traceback
from pathlib import Path

import mistakes
import pytest
from bad_data import coco_set

from conftest import REPO, load_tool, run_tool

TOY_DET = REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py'

#: Variants whose outcome is a traceback today, and why (outside the data checks).
KNOWN = {}


class Accepted(BaseException):
    """Raised in place of building mmengine's Runner: startup accepted the config."""


class StopBeforeRunner:
    @classmethod
    def from_cfg(cls, cfg):
        raise Accepted(cfg)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """The toy config as the tools see it (``_base_`` merged, one plain file) and a 4-image
    COCO set that trains and validates with it."""
    from mmengine.config import Config
    root = tmp_path_factory.mktemp('generated')
    data = coco_set(root / 'coco', num_images=4, side=64)
    cfg = Config.fromfile(TOY_DET).to_dict()
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader]['dataset']
        dataset.update(data_root=f'{data}/', ann_file='annotations/instances_train2017.json',
                       data_prefix=dict(img='train2017/'))
        cfg[loader]['batch_size'] = 2
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator]['ann_file'] = f'{data}/annotations/instances_train2017.json'
    return dict(cfg=cfg, data=data, root=root, tool=load_tool('train'))


def write_config(cfg: dict, path: Path) -> Path:
    """A config file with the given content (plain Python literals, no ``_base_``)."""
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in cfg.items()))
    return path


def startup(world, cfg_path: Path, work_dir: Path):
    """``('error', line)``, ``('accepted', cfg)`` or ``('traceback', text)``: what
    ``python tools/train.py CONFIG --work-dir DIR`` does up to building the Runner."""
    tool = world['tool']
    runner, tool.Runner = tool.Runner, StopBeforeRunner
    try:
        tool.run_tool(lambda: tool.main([str(cfg_path), '--work-dir', str(work_dir)]))
    except Accepted as accepted:
        return 'accepted', accepted.args[0]
    except SystemExit as exit:
        if isinstance(exit.code, str) and exit.code.startswith('error: ') and \
                '\n' not in exit.code.strip():
            return 'error', exit.code
        return 'traceback', f'exit {exit.code!r}'
    except Exception:
        return 'traceback', traceback.format_exc()
    finally:
        tool.Runner = runner
    return 'traceback', 'main returned without building the Runner'


def first_step(cfg) -> str:
    """What the Runner builds from an accepted config, with mmengine's own builders, and one
    training step; returns '' for a correct run, else what went wrong."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import HOOKS, MODELS, init_default_scope
    from mmengine.runner import Runner
    try:
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=0)
        batch = next(iter(loader))
        if cfg.get('val_dataloader'):
            next(iter(Runner.build_dataloader(copy.deepcopy(cfg.val_dataloader), seed=0)))
        for hook in [*cfg.get('custom_hooks', []), *cfg.get('default_hooks', {}).values()]:
            if hook is not None:
                HOOKS.build(copy.deepcopy(hook))
        model = MODELS.build(copy.deepcopy(cfg.model))
        optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        losses = model.train_step(batch, optim_wrapper)
    except Exception:
        return traceback.format_exc()
    objects = sum(len(sample.gt_instances) for sample in batch['data_samples'])
    if not objects:
        return 'silent: the first batch holds no objects'
    if not all(math.isfinite(float(value)) for value in losses.values()):
        return f'silent: non-finite losses {losses}'
    return ''


def classify(world, cfg: dict, tmp_path: Path, name: str):
    path = write_config(cfg, tmp_path / f'{abs(hash(name))}.py')
    kind, detail = startup(world, path, tmp_path / 'work')
    if kind == 'accepted':
        problem = first_step(detail)
        return ('run', '') if not problem else ('traceback', problem)
    return kind, detail


def check(outcome, name):
    kind, detail = outcome
    if name in KNOWN:
        return
    assert kind in ('error', 'run'), f'{name}: {kind}\n{detail[-3000:]}'
    if kind == 'error':
        assert len(detail) > len('error: ') + 20, detail


def test_the_unchanged_config_runs(world, tmp_path):
    assert classify(world, copy.deepcopy(world['cfg']), tmp_path, 'unchanged') == ('run', '')


CONFIG_EVERY = 6  # every 6th of the config mistakes, cycling over the rules (see mistakes.py)


def test_generated_config_mistakes(world, tmp_path):
    """All config variants in one test (one config load of the toy config)."""
    variants = mistakes.config_variants(world['cfg'], every=CONFIG_EVERY)
    outcomes = {}
    for name, change in variants:
        cfg = copy.deepcopy(world['cfg'])
        change(cfg)
        outcomes[name] = classify(world, cfg, tmp_path, name)
    failures = [f'{name}: {kind}: {detail.strip().splitlines()[-1] if detail else ""}'
                for name, (kind, detail) in outcomes.items()
                if kind not in ('error', 'run') and name not in KNOWN]
    assert not failures, f'{len(failures)} of {len(variants)}:\n' + '\n'.join(failures)
    assert len(variants) >= 150


def test_generated_data_mistakes(world, tmp_path):
    sample = json.loads((world['data'] / 'annotations' / 'instances_train2017.json').read_text())
    variants = mistakes.data_variants(sample)
    failures = []
    for i, (name, change) in enumerate(variants):
        root = tmp_path / f'd{i}'
        shutil.copytree(world['data'], root)
        change(root)
        cfg = copy.deepcopy(world['cfg'])
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader]['dataset']['data_root'] = f'{root}/'
        for evaluator in ('val_evaluator', 'test_evaluator'):
            cfg[evaluator]['ann_file'] = f'{root}/annotations/instances_train2017.json'
        kind, detail = classify(world, cfg, tmp_path, name)
        if kind not in ('error', 'run') and name not in KNOWN:
            failures.append(f'{name}: {kind}: {detail.strip()[-1500:]}')
    assert not failures, f'{len(failures)} of {len(variants)}:\n' + '\n\n'.join(failures)
    assert len(variants) >= 50


@pytest.mark.slow
@pytest.mark.parametrize('name', ['annotations[0].bbox: a string', 'image 000001.jpg: empty'])
def test_the_tool_does_what_the_in_process_startup_says(world, tmp_path, name):
    """The same variant through ``python tools/train.py``: the same one line."""
    sample = json.loads((world['data'] / 'annotations' / 'instances_train2017.json').read_text())
    change = dict(mistakes.data_variants(sample))[name]
    root = tmp_path / 'coco'
    shutil.copytree(world['data'], root)
    change(root)
    cfg = copy.deepcopy(world['cfg'])
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader]['dataset']['data_root'] = f'{root}/'
    path = write_config(cfg, tmp_path / 'variant.py')
    kind, line = startup(world, path, tmp_path / 'work')
    assert kind == 'error'
    proc = run_tool(REPO / 'tools' / 'train.py', path, '--work-dir', tmp_path / 'work',
                    check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == line
