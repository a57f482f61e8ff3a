"""tools/gpu_check.py (``make gpu-check``) on a machine without a GPU: the one-line exit, its
arguments, the commands it plans (each parses with its tool's own argument parser), how it runs
them (failures and timeouts recorded, not fatal) and the Markdown report it writes. The GPU steps
themselves run on a GPU; ``--device cpu --dry-run`` runs their CPU equivalents."""
import sys

import pytest
import torch

from conftest import REPO, load_tool, run_tool

gpu_check = load_tool('gpu_check')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA device is here')
@pytest.mark.slow  # the tool as a command
def test_without_cuda_one_line_and_exit_0(tmp_path):
    proc = run_tool(REPO / 'tools' / 'gpu_check.py', '--out', tmp_path / 'gpu.md')
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and 'no CUDA device' in lines[0] and '--dry-run' in lines[0]
    assert not (tmp_path / 'gpu.md').exists()


@pytest.mark.parametrize('argv,message', [
    (['--steps', 'tests,speed'], "unknown step(s) ['speed']"),
    (['--steps', ','], 'unknown step(s) []'),
    (['--device', 'cpu'], '--device cpu only with --dry-run'),
    (['--step-timeout', '0'], 'give a positive number of seconds'),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _tools_on_path(monkeypatch):
    """The benchmark tools import their ``benchmarking`` package from tools/."""
    monkeypatch.syspath_prepend(str(REPO / 'tools'))


def _commands(argv, tmp_path):
    args = gpu_check.parse_args(argv)
    return args, gpu_check.plan(args, str(tmp_path))


def test_gpu_plan_covers_what_the_check_promises(tmp_path, monkeypatch):
    """On a GPU: the CUDA tests; ours vs timm and mmpretrain (both memory formats) in fp32,
    bf16 and fp16 at 8x224 and 2x512, inference and training; Mask R-CNN FPS at 1333x800 for our
    config and mmdet's own, its training iteration in fp32 and fp16 AMP; the ONNX graph on CUDA.
    Every benchmark command parses with its tool's own parser."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # for the tools' parsers
    args, plan = _commands([], tmp_path)
    assert list(plan) == list(gpu_check.STEPS)
    tests = plan['tests'][0]
    assert tests.env == {'CONVNEXT_TEST_DEVICE': 'cuda'}
    assert 'tests/models/test_cuda.py' in tests.argv
    backbone = load_tool('benchmark_backbone')
    seen = set()
    for command in plan['backbone']:
        parsed = backbone.parse_args(command.argv[2:])
        assert parsed.device == 'cuda' and parsed.memory_format == 'both'
        assert parsed.modes == 'infer,train' and parsed.arch == 'v1-tiny'
        assert set(parsed.impls.split(',')) == {'ours', 'timm', 'timm_cl', 'mmpretrain',
                                                'mmpretrain_cl'}
        seen.add((parsed.dtype, parsed.batch, parsed.size))
        assert parsed.no_memory == ((parsed.size, parsed.dtype) not in ((512, 'fp32'),
                                                                        (512, 'fp16')))
    assert seen == {(d, b, s) for d in ('fp32', 'bf16', 'fp16') for b, s in ((8, 224), (2, 512))}
    fps = [c for c in plan['maskrcnn'] if c.argv[1] == 'tools/benchmark.py']
    bench = load_tool('benchmark')
    configs = set()
    for command in fps:
        parsed = bench.parse_args(command.argv[2:])
        assert parsed.shape == [800, 1333] and parsed.device == 'cuda'
        configs.add(parsed.config)
    assert configs == {gpu_check.OUR_MASKRCNN, gpu_check.mmdet_config_file(str(tmp_path))}
    train = [backbone.parse_args(c.argv[2:]) for c in plan['maskrcnn'] if c not in fps]
    assert {(t.mode, t.dtype, t.size, t.height, t.modes) for t in train} == {
        ('maskrcnn', d, 1333, 800, 'train') for d in ('fp32', 'fp16')}
    assert all(not t.no_memory for t in train)
    onnx = gpu_check.parse_args(plan['onnx'][0].argv[2:])
    assert onnx.onnx_case and onnx.device == 'cuda'


def test_dry_run_plan_is_cpu_and_tiny(tmp_path):
    args, plan = _commands(['--device', 'cpu', '--dry-run', '--steps',
                            'backbone,tests,maskrcnn'], tmp_path)
    assert list(plan) == ['backbone', 'tests', 'maskrcnn']
    assert plan['tests'][0].env == {'CONVNEXT_TEST_DEVICE': 'cpu'}
    backbone = load_tool('benchmark_backbone')
    parsed = [backbone.parse_args(c.argv[2:]) for c in plan['backbone']]
    assert {(p.device, p.dtype, p.batch, p.size) for p in parsed} == {
        ('cpu', 'fp32', 1, 64), ('cpu', 'bf16', 1, 64)}
    # mmcv's CPU ops are fp32-only: the host-model AMP path runs with UperNet there
    train = [backbone.parse_args(c.argv[2:]) for c in plan['maskrcnn']
             if c.argv[1] == 'tools/benchmark_backbone.py']
    assert {(t.mode, t.dtype) for t in train} == {('maskrcnn', 'fp32'), ('upernet', 'bf16')}


def test_failures_and_timeouts_are_recorded():
    command = gpu_check.Command([sys.executable, '-c', 'import sys; print("x"); sys.exit(3)'])
    result = gpu_check.run_command('tests', command, timeout=60)
    assert result.status == 'failed (exit 3)' and 'x' in result.output
    command = gpu_check.Command([sys.executable, '-c', 'import time; time.sleep(30)'])
    result = gpu_check.run_command('tests', command, timeout=1)
    assert result.status == 'timed out after 1 s'  # the 30 s sleep was cut, not waited for


def test_report_names_the_gpu_versions_commands_and_outputs(tmp_path, monkeypatch):
    """``main`` with the commands' results given: one Markdown file, the environment, one row
    per command (failed and skipped ones included), each output under its command; the exit
    status says whether every command passed."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    env = {'GPU': 'NVIDIA H100 80GB HBM3, 79 GiB', 'CUDA': '13.0 (cuDNN 91000)',
           'torch': '2.13.0'}
    monkeypatch.setattr(gpu_check, 'environment', lambda device: env)
    monkeypatch.setattr(gpu_check, 'mmcv_ops_on', lambda device: 'mmcv RoIAlign does not run')
    ran = []

    def fake_run(step, command, timeout):
        ran.append(command)
        status = 'failed (exit 1)' if step == 'onnx' else 'ok'
        return gpu_check.Result(step, command, status, 1.5, f'| table of {step} |')
    monkeypatch.setattr(gpu_check, 'run_command', fake_run)
    out = tmp_path / 'report.md'
    assert gpu_check.main(['--out', str(out), '--steps', 'tests,maskrcnn,onnx']) == 1
    text = out.read_text()
    assert '- GPU: NVIDIA H100 80GB HBM3, 79 GiB' in text and '- CUDA: 13.0' in text
    assert '- torch: 2.13.0' in text
    rows = [line for line in text.splitlines() if line.startswith('| tests')
            or line.startswith('| maskrcnn') or line.startswith('| onnx')]
    assert len(rows) == 1 + 4 + 1
    assert 'CONVNEXT_TEST_DEVICE=cuda python -m pytest tests/models/test_cuda.py' in rows[0]
    assert all('skipped: mmcv RoIAlign does not run' in r for r in rows[1:5])
    assert '| failed (exit 1) |' in rows[5]
    assert len(ran) == 2
    assert '## tests: `CONVNEXT_TEST_DEVICE=cuda python -m pytest' in text
    assert '| table of onnx |' in text
    assert (tmp_path / 'gpu_check_files' / 'mmdet_maskrcnn_convnext_t.py').read_text() == (
        f"_base_ = ['{gpu_check.MMDET_MASKRCNN}']\n")


# ------------------------------------------------------------------ the benchmark's device options
@pytest.mark.parametrize('argv,message', [
    (['--device', 'cuda'], '--device cuda: no CUDA device here'),
    (['--dtype', 'fp16'], '--dtype fp16 on the CPU'),
    (['--mode', 'maskrcnn', '--dtype', 'bf16'], "mmcv's CPU nms/RoIAlign take fp32 only"),
    (['--height', '800'], '--height is for --mode maskrcnn/upernet'),
])
def test_benchmark_device_options_refused_where_they_cannot_work(argv, message, capsys,
                                                                monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit) as exc:
        load_tool('benchmark_backbone').parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_benchmark_cpu_only_options_refused_on_cuda(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with pytest.raises(SystemExit):
        load_tool('benchmark_backbone').parse_args(['--device', 'cuda', '--ablation',
                                                    '--isa', 'avx2'])
    assert '--isa, --ablation: CPU-only' in capsys.readouterr().err
