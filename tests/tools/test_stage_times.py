"""``--per-stage``: the parts of each implementation are the same computation in ours and the
peers (tools/benchmarking/stage_times.py), and their table pairs them (the tool printing it:
test_benchmark_tools.py)."""
import re

import pytest
import torch

from benchmarking import peers
from benchmarking.measure import Case
from benchmarking.stage_times import part_modules, parts_table, time_parts

pytest.importorskip('timm')
pytest.importorskip('mmpretrain')

PARTS = ['stem', 'stage 0 blocks', 'downsample 1', 'stage 1 blocks', 'downsample 2',
         'stage 2 blocks', 'downsample 3', 'stage 3 blocks']


def _params(modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.fixture(scope='module')
def models():
    return peers.build_backbones('v2-atto', ['ours', 'timm', 'mmpretrain'])


def test_parts_hold_the_same_parameters_in_every_implementation(models):
    """Same weights part by part: each part of a peer holds exactly as many parameters as the
    same part of ours (timm's features_only model has no output norms)."""
    parts = {impl: part_modules(model, impl) for impl, model in models.items()}
    assert sorted(parts['ours']) == sorted(PARTS + ['output norms'])
    assert sorted(parts['mmpretrain']) == sorted(parts['ours'])
    assert sorted(parts['timm']) == sorted(PARTS + ['downsample 0'])  # stage 0: an Identity
    for label in PARTS:
        mine = _params(parts['ours'][label])
        assert mine > 0
        assert _params(parts['timm'][label]) == mine, label
        assert _params(parts['mmpretrain'][label]) == mine, label


def test_each_step_records_its_parts_and_the_table_pairs_them(models):
    x = torch.randn(1, 3, 64, 64)
    cases = []
    for impl in ('ours', 'timm'):
        model = models[impl].eval()
        case = Case(impl, 'infer', 'channels_first', lambda m=model: m(x), model=model)
        time_parts(case, model)
        cases.append(case)
    with torch.no_grad():
        for _ in range(7):  # 1 "warm-up" step, then 6 timed: enough for a 95% interval
            for case in cases:
                case.step()
                case.times.append(1.0)
    cases[0].times.pop(0), cases[1].times.pop(0)
    ours = cases[0]
    assert all(len(v) == 7 for v in ours.parts.values())
    # every part was timed inside each step (no timing comparison: a loaded machine reorders them)
    assert all(t > 0 for v in ours.parts.values() for t in v)
    table = parts_table(cases)
    rows = {line.split('|')[1].strip(): line for line in table.splitlines()[2:]}
    assert sorted(rows) == sorted(PARTS + ['output norms', 'downsample 0'])
    assert all(len(v) == 6 for v in ours.parts.values())  # the warm-up's times dropped
    assert rows['output norms'].rstrip(' |').endswith('| -')  # timm has none
    assert re.search(r'\| \d+\.\d, \d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\) \|$', rows['stage 2 blocks'])


def test_per_stage_needs_inference_of_the_backbones(capsys):
    from benchmark_backbone import parse_args
    for argv in (['--mode', 'maskrcnn', '--per-stage'], ['--modes', 'train', '--per-stage']):
        with pytest.raises(SystemExit) as exited:
            parse_args(argv)
        assert exited.value.code == 2
        assert '--per-stage times the parts of the backbones' in capsys.readouterr().err
