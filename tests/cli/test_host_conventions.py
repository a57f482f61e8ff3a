"""Our tools' options that mmdet's and mmseg's own tools also have behave as theirs do.

The same command line goes, in this process, through our ``tools/train.py`` / ``tools/test.py``
and through the host's own (``<site-packages>/mmdet/.mim/tools/*.py``, ``mmseg/.mim/tools/*.py``,
imported as modules: their ``parse_args`` and config preparation, up to the Runner, which both
sides get replaced by a stand-in that records the config: nothing trains or tests). The configs
the two hand to the Runner are compared whole: ``--work-dir`` and its default, ``--cfg-options``
in every form their help names (``key=value``, lists ``key=[a,b]`` and ``key=a,b``, tuples,
nested ``key="[(1,2),(3,4)]"``, several items after one flag, the flag repeated), ``--show-dir``
(and where the host's own visualization hook then puts the images), ``--out``. What our tools
add on purpose is listed in :data:`OURS_ONLY`, with the reason.
"""
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO, load_tool

TOYS = {'mmdet': 'configs/toy/maskrcnn_convnext_toy_coco.py',
        'mmseg': 'configs/toy/upernet_convnext_toy_ade20k.py'}
# --cfg-options in the forms mmdet's and mmseg's help text names, several after one flag, and
# the flag given twice
CFG_OPTIONS = {
    'mmdet': ['--cfg-options', 'test_dataloader.batch_size=2', 'train_cfg.max_epochs=3',
              'test_evaluator.metric=[bbox,segm]', 'val_evaluator.metric=bbox,segm',
              'test_dataloader.dataset.pipeline.1.scale=(64,107)',
              'notes.pairs=[(1,2),(3,4)]', 'notes.flag=False',
              '--cfg-options', 'notes.name=run_a'],
    'mmseg': ['--cfg-options', 'test_dataloader.batch_size=2', 'train_cfg.max_iters=3',
              'test_evaluator.iou_metrics=[mIoU,mDice]', 'val_evaluator.iou_metrics=mIoU,mFscore',
              'test_pipeline.1.scale=(64,107)', 'notes.pairs=[(1,2),(3,4)]',
              'notes.flag=False', '--cfg-options', 'notes.name=run_a']}
# What our tools set beyond the hosts', on purpose: {config key: reason}
OURS_ONLY = {
    'default_hooks.visualization.interval': 'with --show-dir ours draws every test image; '
    "mmseg's hook draws one in `interval` (mmdet's draws every one at test time)",
}


class _Recorded(Exception):
    """Raised by the stand-in Runner once it has the config: nothing is built."""


def _record(into, write_results=False):
    def from_cfg(cfg):
        into['cfg'] = cfg
        test = (lambda: _write_results(cfg)) if write_results else (lambda: None)
        return SimpleNamespace(cfg=cfg, test_evaluator=SimpleNamespace(metrics=into['metrics']),
                               train=lambda: None, test=test)
    into['metrics'] = []
    return from_cfg


def _write_results(cfg):
    """What the evaluators' dumps write at the end of a test, where the config points them."""
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
        else [cfg.test_evaluator]
    for metric in evaluators:
        if metric.get('type') == 'DumpDetResults':
            Path(metric['out_file_path']).write_bytes(b'results')
        elif metric.get('output_dir'):
            Path(metric['output_dir'], 'image.png').write_bytes(b'label map')


def beside(temporary, out):
    """Whether ``temporary`` is the hidden name beside ``out`` that our tools write the results
    to and rename to ``out`` when the test has finished (convnext_backbone.cli.results)."""
    temporary, out = Path(temporary).absolute(), Path(out).absolute()
    return temporary.parent == out.parent and temporary.name.startswith(f'.{out.name}')


def host_tool(host, name):
    path = Path(importlib.import_module(host).__file__).parent / '.mim' / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'host_{host}_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_a_project(toy_root, tmp_path, monkeypatch):
    """A project folder as users have it: configs/ and data/toy/ in the current folder."""
    (tmp_path / 'configs').symlink_to(REPO / 'configs')
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'toy').symlink_to(toy_root)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('LOCAL_RANK', raising=False)  # the hosts' parse_args set it
    torch.save({'state_dict': {}, 'meta': {}}, tmp_path / 'model.pth')
    yield tmp_path
    torch.set_flush_denormal(False)  # our tools flush denormals; leave the process as it was


def prepared(host, tool, argv, monkeypatch):
    """(our config, the host's config, the host's extra metrics) for one command line."""
    ours, theirs = {}, {}
    module = load_tool(tool)
    monkeypatch.setattr(module.ToolRunner, 'from_cfg', _record(ours, write_results=True))
    module.main(list(argv))
    module = host_tool(host, tool)
    monkeypatch.setattr(module, 'Runner', SimpleNamespace(from_cfg=_record(theirs)))
    monkeypatch.setattr(sys, 'argv', [f'{host}/tools/{tool}.py', *argv])
    module.main()
    return ours['cfg'], theirs['cfg'], theirs['metrics']


def flat(value, prefix=''):
    """A config as {dotted key: leaf value}."""
    if isinstance(value, dict):
        items = {}
        for key, item in value.items():
            items.update(flat(item, f'{prefix}{key}.'))
        return items
    if isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value):
        items = {}
        for index, item in enumerate(value):
            items.update(flat(item, f'{prefix}{index}.'))
        return items
    return {prefix[:-1]: value}


def differences(ours, theirs):
    a, b = flat(ours.to_dict()), flat(theirs.to_dict())
    return {key: (a.get(key, '<absent>'), b.get(key, '<absent>'))
            for key in sorted(set(a) | set(b)) if a.get(key, '<absent>') != b.get(key, '<absent>')}


def assert_same_config(ours, theirs, allowed=()):
    diff = differences(ours, theirs)
    diff.pop('work_dir', None)  # compared as the path it names (below)
    assert set(diff) <= set(allowed), diff
    assert os.path.abspath(ours.work_dir) == os.path.abspath(theirs.work_dir)


@pytest.mark.parametrize('host', ['mmdet', 'mmseg'])
def test_train_work_dir_default_and_cfg_options(host, in_a_project, monkeypatch):
    ours, theirs, _ = prepared(host, 'train', [TOYS[host], *CFG_OPTIONS[host]], monkeypatch)
    assert_same_config(ours, theirs)
    name = Path(TOYS[host]).stem
    assert os.path.abspath(ours.work_dir) == str(in_a_project / 'work_dirs' / name)
    assert ours.notes.pairs == [(1, 2), (3, 4)] and ours.notes.flag is False
    assert ours.notes.name == 'run_a'  # the second --cfg-options flag adds to the first


@pytest.mark.parametrize('host', ['mmdet', 'mmseg'])
def test_test_relative_show_dir_out_and_work_dir(host, in_a_project, monkeypatch):
    out = 'results.pkl' if host == 'mmdet' else 'label_maps'
    argv = [TOYS[host], 'model.pth', '--work-dir', 'runs/eval', '--show-dir', 'vis',
            '--out', out, *CFG_OPTIONS[host]]
    ours, theirs, metrics = prepared(host, 'test', argv, monkeypatch)
    # ours writes the results beside --out and renames them into place when the test is done
    # (a test that stops half-way leaves no partial results under the name): the same place
    if host == 'mmdet':  # the host appends its dump metric to the built evaluator
        dump = ours.test_evaluator.pop()
        assert dump['type'] == 'DumpDetResults' and len(metrics) == 1
        assert beside(dump['out_file_path'], out) and metrics[0].out_file_path == out
        theirs.test_evaluator = [theirs.test_evaluator]  # the evaluators it had, as a list
    else:
        assert beside(ours.test_evaluator.pop('output_dir'), out)
        assert theirs.test_evaluator.pop('output_dir') == out
    assert (in_a_project / out).exists()
    assert_same_config(ours, theirs, allowed=OURS_ONLY)
    assert ours.work_dir == 'runs/eval' and ours.load_from == 'model.pth'
    assert os.path.abspath(drawn_to(ours, host)) == os.path.abspath(drawn_to(theirs, host))
    if host == 'mmdet':  # under the run's timestamped log folder, as the host's hook joins it
        assert drawn_to(ours, host) == str(in_a_project / 'runs/eval/20260101_000000/vis')
    else:  # mmseg: from the current folder
        assert os.path.abspath(drawn_to(ours, host)) == str(in_a_project /
                                                            'vis/vis_data/vis_image')


def drawn_to(cfg, host):
    """The folder the host's own visualization hook and visualizer write test images to, for
    this config (a run started in the current folder at 2026-01-01 00:00:00)."""
    from mmengine.registry import init_default_scope
    from mmengine.visualization import Visualizer
    init_default_scope(host)
    hooks = importlib.import_module(f'{host}.registry')
    runner = SimpleNamespace(work_dir=os.path.abspath(cfg.work_dir), timestamp='20260101_000000',
                             iter=0)
    visualizer = hooks.VISUALIZERS.build({**cfg.visualizer, 'name': f'probe{id(cfg)}'})
    try:  # the hook draws with the current visualizer instance: this one
        hook = hooks.HOOKS.build(dict(cfg.default_hooks.visualization))
        if host == 'mmdet':
            hook.after_test_iter(runner, 0, {}, [])  # joins test_out_dir onto the log folder
            return hook.test_out_dir
        backend = next(iter(visualizer._vis_backends.values()))
        return os.path.join(backend._save_dir, backend._img_save_dir)
    finally:
        Visualizer._instance_dict.pop(visualizer.instance_name, None)
