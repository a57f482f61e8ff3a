"""tools/benchmark_backbone.py and tools/benchmark.py run end to end at tiny sizes.

Speeds are never asserted (docs/benchmarks.md records them); what is checked is that the tools
compare like with like: every peer, and ours with each fast-path technique switched off, computes
the same features as ours (the tool refuses to time otherwise), and our Mask R-CNN config and
mmdet's own give the same loss on the same batch with the same weights.
"""
import re

import pytest
from conftest import REPO, run_tool

pytest.importorskip('timm')
pytest.importorskip('mmpretrain')


def _rows(stdout: str) -> dict:
    """The Markdown table as {(impl, mode): {column: cell}}."""
    lines = [line for line in stdout.splitlines() if line.startswith('|')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
        rows[(cells['impl'], cells['mode'])] = cells
    return rows


def _rel_diff(cell: str) -> float:
    return float(re.fullmatch(r'max rel diff (\S+)', cell).group(1))


def test_backbone_mode_peers_and_ablations_equal_ours():
    proc = run_tool('tools/benchmark_backbone.py', '--arch', 'v2-atto', '--batch', '1',
                    '--size', '64', '--warmup', '1', '--reps', '2', '--ablation',
                    '--impls', 'ours,timm,mmpretrain_cl')
    rows = _rows(proc.stdout)
    impls = ['ours', 'timm', 'mmpretrain_cl', 'ours -no-onednn', 'ours -no-fold',
             'ours -no-dwgrad', 'ours -no-chunks', 'ours -plain']
    assert sorted(rows) == sorted((i, m) for i in impls for m in ('infer', 'train'))
    assert rows[('ours', 'infer')]['peer/ours'] == '1.00x'
    for impl in impls[1:]:
        assert _rel_diff(rows[(impl, 'infer')]['check']) < 1e-5, impl
    for impl in ('ours', 'timm', 'mmpretrain_cl'):  # peak memory measured in a subprocess
        assert float(rows[(impl, 'train')]['peak MB']) > 0
    assert re.search(r'FLOPs: \d+\.\d G per forward', proc.stdout)
    assert re.search(r'2048x2048 fp32 GEMM: \d+ GFLOP/s', proc.stdout)
    assert '`python tools/benchmark_backbone.py --arch v2-atto' in proc.stdout  # the command


def test_maskrcnn_mode_same_loss_as_mmdet_config():
    proc = run_tool('tools/benchmark_backbone.py', '--mode', 'maskrcnn', '--batch', '1',
                    '--size', '96', '--warmup', '1', '--reps', '1', '--no-memory')
    rows = _rows(proc.stdout)
    assert sorted(rows) == [('mmdet', 'train_step'), ('ours', 'train_step')]
    losses = [float(rows[(name, 'train_step')]['check'].split()[1]) for name in ('ours', 'mmdet')]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_with_cp_mode():
    proc = run_tool('tools/benchmark_backbone.py', '--mode', 'with_cp', '--arch', 'v2-atto',
                    '--batch', '1', '--size', '64', '--warmup', '1', '--reps', '1')
    rows = _rows(proc.stdout)
    assert sorted(rows) == [('ours', 'train'), ('ours with_cp', 'train')]
    assert all(float(row['peak MB']) > 0 for row in rows.values())


def test_unknown_arch_is_refused():
    proc = run_tool('tools/benchmark_backbone.py', '--arch', 'tiny', check=False)
    assert proc.returncode == 2
    assert "invalid choice: 'tiny'" in proc.stderr and 'v1-tiny' in proc.stderr


@pytest.mark.parametrize('config', ['maskrcnn_convnext_toy_coco', 'upernet_convnext_toy_ade20k'])
def test_config_benchmark_reports_images_per_second(config):
    """tools/benchmark.py on a detector and a segmentor (random images, no dataset)."""
    proc = run_tool('tools/benchmark.py', REPO / f'configs/toy/{config}.py', '--shape', '64', '64',
                    '--batch', '2', '--iters', '2', '--warmup', '1', '--device', 'cpu')
    header, _, row = [line for line in proc.stdout.splitlines() if line.startswith('|')]
    cells = dict(zip(header.strip('|').split('|'), row.strip('|').split('|')))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert cells['batch'] == '2' and cells['shape'] == '64x64'
    # the median is printed to 3 decimals
    assert 2 / float(cells['img/s']) == pytest.approx(float(cells['median s/batch']), abs=5e-4)
