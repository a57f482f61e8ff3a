"""Generative: mistakes nobody listed, made by rule (mistakes.py) from the toy detection config
and a toy COCO set, each run through tools/train.py's own startup (argument parsing, config
loading and preparation, every check) in process; when the tool accepts a variant, the data
loaders are built by mmengine's own ``Runner.build_dataloader`` and each yields a first batch.

Each variant must end in one ``error: ...`` line (what ``run_tool`` prints), or in a correct run
of the data side: loaders that yield batches, a training set with objects. A traceback (at
startup or from the loaders) or a training set that is silently empty is a finding. Config
variants of the model, optimizer, schedule and hooks are followed up to the Runner only (the
model-fit check and the Runner's own error handling are other mechanisms); that the harness'
"correct run" means one is checked on the unchanged config with a real training step. Findings
not fixed yet are listed in :data:`KNOWN` with their reason. A few variants also run as real
subprocesses, to prove the in-process path is the tool's behaviour."""
import contextlib
import copy
import io
import itertools
import json
import math
import shutil
import traceback
from pathlib import Path

import mistakes
import pytest
from bad_data import coco_set

from conftest import REPO, load_tool, run_tool, young_garbage_only

TOY_DET = REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py'

#: Variants whose outcome is a traceback today, and why: config shapes read by the tools'
#: config preparation before any check (handled by the tools' general error handling).
KNOWN = {
    'optim_wrapper: a string': "cli.config reads optim_wrapper['type'] before any check",
    'default_hooks: a string': 'cli.config/checks read default_hooks.checkpoint before any check',
    'custom_imports: a string': "mmengine's Config.fromfile imports custom_imports['imports']",
    # a RandomChoice over no transforms builds, and fails only when it draws: the loaders'
    # check builds every pipeline but runs none (that needs the data)
    'train_dataloader.dataset.pipeline.3.transforms: a dict': 'fails when the pipeline runs',
}
DATA_SECTIONS = ('train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator')


_names = itertools.count()


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


#: What ``run_tool`` appends to the line of an exception that is not one of our user errors
#: (an unexpected failure: for this test, as bad as a traceback).
UNEXPECTED = ('(for the traceback:', '(traceback in ')


def startup(world, cfg_path: Path, work_dir: Path):
    """``('error', line)``, ``('accepted', cfg)`` or ``('traceback', text)``: what
    ``python tools/train.py CONFIG --work-dir DIR`` does up to building the Runner. An error
    line that ``run_tool`` marks as an unexpected exception counts as a traceback."""
    tool = world['tool']
    accepted = []

    def main():
        try:
            tool.main([str(cfg_path), '--work-dir', str(work_dir)])
        except Accepted as stop:
            accepted.append(stop.args[0])

    runner, tool.ToolRunner = tool.ToolRunner, StopBeforeRunner
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            tool.run_tool(main)
    except SystemExit as exit:
        lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
        last = lines[-1] if lines else ''
        if exit.code == 1 and last.startswith('error: ') and \
                not any(mark in last for mark in UNEXPECTED):
            return 'error', last
        return 'traceback', f'exit {exit.code!r}: {last}'
    except Exception:
        return 'traceback', traceback.format_exc()
    finally:
        tool.ToolRunner = runner
    if accepted:
        return 'accepted', accepted[0]
    return 'traceback', 'main returned without building the Runner'


def _user_error(error) -> bool:
    from convnext_backbone.cli import USER_ERRORS
    return isinstance(error, USER_ERRORS)


def first_batches(cfg) -> tuple:
    """The accepted config's loaders, built as the Runner builds them, one batch each:
    ``('run', '')``, ``('error', line)`` for an error our tools print as one line, else
    ``('traceback', text)`` or ``('silent', what)``."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from convnext_backbone.cli import error_line
    try:
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        for key in ('train_dataloader', 'val_dataloader'):
            if not cfg.get(key):
                continue
            loader = Runner.build_dataloader(copy.deepcopy(cfg[key]), seed=0)
            next(iter(loader))
            dataset = loader.dataset
            objects = sum(len(dataset.get_data_info(i).get('instances', []))
                          for i in range(len(dataset)))
            if key == 'train_dataloader' and not objects:
                return 'silent', f'{key}: {len(dataset)} images, no object to train on'
    except Exception as error:
        if _user_error(error):
            return 'error', error_line(error)
        return 'traceback', traceback.format_exc()
    return 'run', ''


def first_step(cfg) -> str:
    """What the Runner builds from an accepted config, with mmengine's own builders, and one
    training step; returns '' for a correct run, else what went wrong."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import HOOKS, MODELS, VISUALIZERS, init_default_scope
    from mmengine.runner import Runner
    try:
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        if cfg.get('visualizer'):  # the Runner builds it before the hooks (which look it up)
            VISUALIZERS.build(dict(copy.deepcopy(cfg.visualizer), save_dir=cfg.work_dir,
                                   name=f'variant{next(_names)}'))
        loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=0)
        batch = next(iter(loader))
        for hook in [*cfg.get('custom_hooks', []), *cfg.get('default_hooks', {}).values()]:
            if hook is not None:
                HOOKS.build(copy.deepcopy(hook))
        model = MODELS.build(copy.deepcopy(cfg.model))
        optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        losses = model.train_step(batch, optim_wrapper)
    except Exception:
        return traceback.format_exc()
    if not all(math.isfinite(float(getattr(value, 'detach', lambda: value)()))
               for value in losses.values()):
        return f'non-finite losses {losses}'
    return ''


def classify(world, cfg: dict, tmp_path: Path, name: str, loaders: bool = True):
    """The outcome of one variant (see the module docstring); ``loaders=False``: up to the
    Runner only (``('accepted', '')`` when startup takes it)."""
    path = write_config(cfg, tmp_path / f'{abs(hash(name))}.py')
    kind, detail = startup(world, path, tmp_path / 'work')
    if kind == 'accepted':
        return first_batches(detail) if loaders else ('accepted', '')
    return kind, detail


def failures_of(outcomes: dict) -> list:
    bad = []
    for name, (kind, detail) in outcomes.items():
        if name in KNOWN:
            continue
        if kind == 'error' and len(detail) < len('error: ') + 20:
            bad.append(f'{name}: an error line that says nothing: {detail!r}')
        elif kind not in ('error', 'run', 'accepted'):
            bad.append(f'{name}: {kind}: {detail.strip()[-1500:]}')
    return bad


@pytest.mark.slow
def test_the_unchanged_config_runs(world, tmp_path):
    cfg = copy.deepcopy(world['cfg'])
    assert classify(world, cfg, tmp_path, 'unchanged') == ('run', '')
    kind, prepared = startup(world, write_config(cfg, tmp_path / 'same.py'), tmp_path / 'w')
    assert kind == 'accepted' and first_step(prepared) == ''  # a real training step


CONFIG_EVERY = 6  # every 6th of the config mistakes, cycling over the rules (see mistakes.py)


@pytest.mark.slow
def test_generated_config_mistakes(world, tmp_path):
    """Every CONFIG_EVERY-th variant of every config key the tools read; those of the data
    sections are followed into the loaders."""
    variants = mistakes.config_variants(world['cfg'], every=CONFIG_EVERY)
    outcomes = {}
    with young_garbage_only() as freeze:
        for name, change in variants:
            freeze()
            cfg = copy.deepcopy(world['cfg'])
            change(cfg)
            outcomes[name] = classify(world, cfg, tmp_path, name,
                                      loaders=name.startswith(DATA_SECTIONS))
    failures = failures_of(outcomes)
    assert not failures, f'{len(failures)} of {len(variants)}:\n' + '\n\n'.join(failures)
    assert len(variants) >= 200


@pytest.mark.slow  # every generated data mistake through the startup checks (about 18 s)
def test_generated_data_mistakes(world, tmp_path):
    """Every field of the annotation file's first image, annotation and category, its lists,
    the annotation file and an image file, each mistaken by every rule."""
    sample = json.loads((world['data'] / 'annotations' / 'instances_train2017.json').read_text())
    variants = mistakes.data_variants(sample)
    outcomes = {}
    with young_garbage_only() as freeze:
        for i, (name, change) in enumerate(variants):
            freeze()
            root = tmp_path / f'd{i}'
            shutil.copytree(world['data'], root)
            change(root)
            outcomes[name] = classify(world, with_data(world['cfg'], root), tmp_path, name)
    failures = failures_of(outcomes)
    assert not failures, f'{len(failures)} of {len(variants)}:\n' + '\n\n'.join(failures)
    assert len(variants) >= 90
    errors = sum(kind == 'error' for kind, _ in outcomes.values())
    assert errors >= len(variants) // 2  # most of them are mistakes a run cannot use


def with_data(cfg: dict, root: Path) -> dict:
    cfg = copy.deepcopy(cfg)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader]['dataset']['data_root'] = f'{root}/'
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator]['ann_file'] = f'{root}/annotations/instances_train2017.json'
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('name', ['annotations[0].bbox: a string', 'image 000001.jpg: empty',
                                  'train_dataloader.batch_size: zero'])
def test_the_tool_does_what_the_in_process_startup_says(world, tmp_path, name):
    """The same variant through ``python tools/train.py``: the same one line."""
    sample = json.loads((world['data'] / 'annotations' / 'instances_train2017.json').read_text())
    root = tmp_path / 'coco'
    shutil.copytree(world['data'], root)
    cfg = with_data(world['cfg'], root)
    data_changes = dict(mistakes.data_variants(sample))
    if name in data_changes:
        data_changes[name](root)
    else:
        dict(mistakes.config_variants(cfg))[name](cfg)
    path = write_config(cfg, tmp_path / 'variant.py')
    kind, line = startup(world, path, tmp_path / 'work')
    assert kind == 'error'
    proc = run_tool(REPO / 'tools' / 'train.py', path, '--work-dir', tmp_path / 'work',
                    check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == line
