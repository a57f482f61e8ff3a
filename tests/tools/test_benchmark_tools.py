"""tools/benchmark_backbone.py and tools/benchmark.py run end to end at tiny sizes.

Speeds are never asserted (docs/benchmarks.md records them); what is checked is that the tools
compare like with like: every peer, and ours with each fast-path technique switched off, computes
the same features as ours (the tool refuses to time otherwise), and our Mask R-CNN config and
mmdet's own give the same loss on the same batch with the same weights.
"""
import re

import pytest
from doc_commands import doc_argv

from benchmarking.isa import cpu_flags
from conftest import REPO, THREADS, run_tool

pytestmark = pytest.mark.slow  # every test runs a tool in a subprocess

pytest.importorskip('timm')
pytest.importorskip('mmpretrain')


def backbone_tool(*args):
    """``python tools/benchmark_backbone.py ARGS`` with the test run's threads per process
    (conftest.THREADS: the tool's default of 2 on top of a second busy worker would
    oversubscribe the cores)."""
    return run_tool('tools/benchmark_backbone.py', *args, '--threads', THREADS)


def _rows(stdout: str) -> dict:
    """The (first) Markdown table as {(impl, mode): {column: cell}}."""
    lines = stdout[stdout.index('\n|'):].split('\n\n')[0].strip().splitlines()
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
        rows[(cells['impl'], cells['mode'])] = cells
    return rows


def _rel_diff(cell: str) -> float:
    return float(re.match(r'max rel diff ([^;\s]+)', cell).group(1))


# docs/benchmarks.md gives this run as the suite's (its time under load)
ABLATION = ('python tools/benchmark_backbone.py --arch v2-atto --batch 1 --size 64 --warmup 1 '
            '--reps 2 --ablation --impls ours,timm,mmpretrain_cl --no-memory --per-stage')


def test_backbone_mode_peers_and_ablations_equal_ours():
    python, tool, *args = doc_argv(ABLATION)
    proc = backbone_tool(*args)
    rows = _rows(proc.stdout)
    impls = ['ours', 'timm', 'mmpretrain_cl', 'ours -no-onednn', 'ours -no-fold',
             'ours -no-dwgrad', 'ours -no-chunks', 'ours -onednn-gemms', 'ours -mkl-gemms',
             'ours -plain']
    assert sorted(rows) == sorted((i, m) for i in impls for m in ('infer', 'train'))
    assert rows[('ours', 'infer')]['peer/ours'] == '1.00x'
    # the per-repetition ratio: 2 repetitions are too few for a 95% interval (6 are needed)
    assert rows[('ours', 'infer')]['paired peer/ours (95% CI)'] == '-'
    assert re.fullmatch(r'\d+\.\d\dx', rows[('timm', 'train')]['paired peer/ours (95% CI)'])
    for impl in impls[1:]:
        assert _rel_diff(rows[(impl, 'infer')]['check']) < 1e-5, impl
    # each case of ours says which block paths fast_path.block_path chose (v2-atto: 12 blocks)
    assert rows[('ours', 'infer')]['check'] in ('onednn_inference x12', 'mkl_inference x12')
    assert rows[('ours', 'train')]['check'] == 'cpu_training x12'
    assert rows[('ours -plain', 'train')]['check'].endswith('plain x12')
    assert rows[('ours -no-onednn', 'infer')]['check'].endswith('aten x12')
    assert rows[('ours -mkl-gemms', 'infer')]['check'].endswith('mkl_inference x12')
    assert rows[('ours -onednn-gemms', 'infer')]['check'].endswith('onednn_inference x12')
    assert rows[('timm', 'train')]['peak MB'] == '-'  # --no-memory; test_with_cp_mode measures
    assert re.search(r'FLOPs: \d+\.\d G per forward', proc.stdout)
    assert re.search(r'2048x2048 fp32 GEMM: \d+ GFLOP/s', proc.stdout)
    assert '`python tools/benchmark_backbone.py --arch v2-atto' in proc.stdout  # the command
    # --per-stage: the parts of each backbone's inference (tests/tools/test_stage_times.py)
    assert '### Time per part of the network' in proc.stdout
    assert ('| part | ours ms | timm ms, paired peer/ours | mmpretrain_cl ms, paired peer/ours |'
            in proc.stdout)
    assert '| stage 3 blocks |' in proc.stdout


@pytest.mark.parametrize('mode,host', [('maskrcnn', 'mmdet'), ('upernet', 'mmseg')])
def test_host_model_mode_same_loss_as_host_config(mode, host):
    """Our Mask R-CNN / UperNet config against mmdet's / mmseg's own: same weights, same loss;
    a training iteration and an inference step of each are timed."""
    proc = backbone_tool('--mode', mode, '--batch', '2',
                         '--size', '64', '--warmup', '1', '--reps', '1', '--no-memory')
    rows = _rows(proc.stdout)
    assert sorted(rows) == sorted((n, m) for n in (host, 'ours') for m in ('infer', 'train'))
    losses = [float(rows[(name, 'train')]['check'].split()[1]) for name in ('ours', host)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


@pytest.mark.skipif('avx2' not in cpu_flags(), reason='needs an x86 CPU with AVX2')
def test_isa_option_runs_under_the_isa_and_reports_it():
    """``--isa avx2`` re-runs the tool with ATen, oneDNN and MKL capped to AVX2, and prints what
    each library actually runs (asked of the libraries). Where MKL names no ISA (every AMD CPU)
    the line says it cannot tell, and the run goes on (the verdicts on every kind of CPU:
    tests/tools/test_isa_reports.py)."""
    proc = backbone_tool('--isa', 'avx2', '--arch', 'v2-atto',
                         '--batch', '1', '--size', '32', '--warmup', '0', '--reps', '1',
                         '--impls', 'ours', '--no-memory', '--profile')
    line = next(li for li in proc.stdout.splitlines() if li.startswith('- ISA in use'))
    assert line.startswith('- ISA in use (--isa avx2): ATen AVX2; oneDNN Intel AVX2')
    assert 'brg_matmul:avx2' in line and 'avx512' not in line and 'AVX-512' not in line
    mkl = line.split('; MKL ', 1)[1]
    assert ('Intel(R) AVX2' in mkl) != ('cannot tell whether MKL_ENABLE_INSTRUCTIONS=AVX2 took '
                                        'effect' in mkl), mkl
    assert '| depthwise conv (fwd + bwd) |' in proc.stdout  # the per-op profile


def test_with_cp_mode():
    """Also the peak-memory probes (one subprocess per implementation)."""
    proc = backbone_tool('--mode', 'with_cp', '--arch', 'v2-atto',
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
    # test time's work: every detection up to max_per_img (20 in the toy), the whole image
    assert cells['work per image'] == {'maskrcnn_convnext_toy_coco': '20 detections',
                                       'upernet_convnext_toy_ade20k': 'whole image'}[config]
    # img/s = batch / median, both rounded as printed (median: 3 decimals, img/s: 2)
    median, rate = float(cells['median s/batch']), float(cells['img/s'])
    assert 2 / (median + 5e-4) - 5e-3 <= rate <= 2 / (median - 5e-4) + 5e-3
