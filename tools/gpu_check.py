"""Correctness and speed on a GPU in one command (``make gpu-check``; about 8 minutes on one H100).

    python tools/gpu_check.py [--out work_dirs/gpu_check.md] [--steps tests,backbone,maskrcnn,onnx]
        [--step-timeout 300] [--device cuda|cpu] [--dry-run]

Steps, each a command of its own (run in a subprocess, its output kept; a failing step does not
stop the others, its status says what happened):

* ``tests``: the CUDA tests, tests/models/test_cuda.py (fast path on/off equal, AMP fp16 and
  bf16 training steps finite and close to fp32, ``with_cp`` equal, outputs contiguous for mmcv's
  RoIAlign) and the CUDA cases of tests/models/test_mixed_precision.py.
* ``backbone``: tools/benchmark_backbone.py --device cuda, ours against timm and mmpretrain
  (channels-first and channels-last), fp32 / bf16 / fp16, inference and training step, 8x224²
  and 2x512² (peak memory for 2x512² in fp32 and fp16).
* ``maskrcnn``: Mask R-CNN ConvNeXt-T, our config and mmdet's own ConvNeXt config (mmpretrain's
  backbone): inference FPS at 1333x800 (tools/benchmark.py), and a training iteration (2 images
  of 1333x800) with its peak memory, fp32 and fp16 AMP (tools/benchmark_backbone.py --mode
  maskrcnn). Needs mmcv built with its CUDA ops.
* ``onnx``: the exported ConvNeXt-T backbone graph (8x224²) in onnxruntime's CUDA execution
  provider, against the eager model on the GPU (where onnxruntime-gpu is installed).

Writes one Markdown file (``--out``): the GPU, torch / CUDA / cuDNN / onnxruntime versions, a
table of the steps (command, status, seconds), then each step's own output (its tables).
Without a CUDA device it prints one line and exits 0. ``--device cpu --dry-run`` runs every
step's CPU equivalent at tiny sizes instead (fp16 left out, it is a GPU recipe): a check of this
script on a machine without a GPU; its figures mean nothing.
"""
import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ('tests', 'backbone', 'maskrcnn', 'onnx')
MMDET_MASKRCNN = 'mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'
OUR_MASKRCNN = 'configs/maskrcnn_convnext_t_coco.py'


@dataclass
class Command:
    """One command of a step: what it runs, and the environment it adds."""
    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The command as a user would type it (from the repository root)."""
        env = ' '.join(f'{k}={v}' for k, v in self.env.items())
        argv = ['python' if a == sys.executable else a for a in self.argv]
        return (env + ' ' if env else '') + ' '.join(shlex.quote(a) for a in argv)


@dataclass
class Result:
    """What one command did: its status (``ok``, ``failed (exit N)``, ``timed out after N s``,
    ``skipped: why``), wall seconds and output."""
    step: str
    command: Optional[Command]
    status: str
    seconds: float = 0.
    output: str = ''


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='work_dirs/gpu_check.md', help='the Markdown report')
    p.add_argument('--steps', default=','.join(STEPS),
                   help=f'comma-separated subset of {",".join(STEPS)}')
    p.add_argument('--step-timeout', type=int, default=300,
                   help='seconds one command may run before it is stopped')
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--dry-run', action='store_true',
                   help='tiny sizes, few repetitions (with --device cpu: checks this script)')
    p.add_argument('--onnx-case', action='store_true', help=argparse.SUPPRESS)  # the onnx step
    args = p.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(',') if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        p.error(f'--steps {args.steps!r}: unknown step(s) {unknown}; choose from '
                f'{",".join(STEPS)}')
    args.steps = steps
    if args.step_timeout <= 0:
        p.error(f'--step-timeout {args.step_timeout}: give a positive number of seconds')
    if args.device == 'cpu' and not args.dry_run:
        p.error('--device cpu only with --dry-run (the figures of this check are GPU figures)')
    return args


# ------------------------------------------------------------------ the plan
def _python(*args: str, **env: str) -> Command:
    return Command([sys.executable, *args], dict(env))


def plan(args, work_dir: str) -> Dict[str, List[Command]]:
    """The commands of each step asked for, for ``args.device`` (dry run: tiny sizes)."""
    dry, dev = args.dry_run, args.device
    dtypes = ['fp32', 'bf16'] if dev == 'cpu' else ['fp32', 'bf16', 'fp16']
    steps = {}
    steps['tests'] = [_python('-m', 'pytest', 'tests/models/test_cuda.py',
                              'tests/models/test_mixed_precision.py', '-q', '-n', '0', '-rs',
                              '-p', 'no:cacheprovider', CONVNEXT_TEST_DEVICE=dev)]
    reps = ['--warmup', '1', '--reps', '2'] if dry else ['--warmup', '3', '--reps', '10']
    sizes = [('1', '64')] if dry else [('8', '224'), ('2', '512')]
    arch = 'v2-atto' if dry else 'v1-tiny'
    backbone = []
    for batch, size in sizes:
        for dtype in dtypes:
            # peak memory (a fresh process per implementation): 2x512², fp32 and fp16 AMP
            memory = [] if (size, dtype) in (('512', 'fp32'), ('512', 'fp16')) else ['--no-memory']
            backbone.append(_python('tools/benchmark_backbone.py', '--device', dev, '--dtype',
                                    dtype, '--arch', arch, '--batch', batch, '--size', size,
                                    '--modes', 'infer,train', *reps, *memory))
    steps['backbone'] = backbone
    shape = ['128', '160'] if dry else ['800', '1333']
    iters = ['--iters', '2', '--warmup', '1'] if dry else ['--iters', '20', '--warmup', '5']
    maskrcnn = [_python('tools/benchmark.py', config, '--shape', *shape, '--batch', '1', *iters,
                        '--device', dev)
                for config in (OUR_MASKRCNN, mmdet_config_file(work_dir))]
    # training iteration, fp32 and fp16 AMP. On the CPU, mmcv's nms/RoIAlign take fp32 only:
    # the mixed-precision path of the host-model benchmark is exercised with UperNet in bf16.
    amp = ('maskrcnn', 'fp16') if dev == 'cuda' else ('upernet', 'bf16')
    for mode, dtype in (('maskrcnn', 'fp32'), amp):
        size = ['--size', shape[1], '--height', shape[0]] if mode == 'maskrcnn' else \
            ['--size', '64']
        batch = '1' if dry and mode == 'maskrcnn' else '2'  # UperNet trains BN: 2 at least
        maskrcnn.append(_python('tools/benchmark_backbone.py', '--mode', mode, '--device', dev,
                                '--dtype', dtype, '--batch', batch, *size,
                                '--modes', 'train',
                                *(['--warmup', '1', '--reps', '1', '--no-memory'] if dry else
                                  ['--warmup', '2', '--reps', '5'])))
    steps['maskrcnn'] = maskrcnn
    onnx = [_python('tools/gpu_check.py', '--onnx-case', '--device', dev, '--out',
                    os.path.join(work_dir, 'backbone.onnx'))]
    if dry:
        onnx[0].argv.append('--dry-run')
    steps['onnx'] = onnx
    return {name: steps[name] for name in args.steps}


def mmdet_config_file(work_dir: str) -> str:
    """A config file that inherits mmdet's own ConvNeXt-T Mask R-CNN config (tools/benchmark.py
    takes files)."""
    return os.path.join(work_dir, 'mmdet_maskrcnn_convnext_t.py')


def write_mmdet_config(work_dir: str) -> None:
    os.makedirs(work_dir, exist_ok=True)
    with open(mmdet_config_file(work_dir), 'w') as f:
        f.write(f"_base_ = ['{MMDET_MASKRCNN}']\n")


# ------------------------------------------------------------------ running
def run_command(step: str, command: Command, timeout: int) -> Result:
    env = dict(os.environ, **command.env)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO, env.get('PYTHONPATH')) if p)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command.argv, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b'')
        out = out.decode(errors='replace') if isinstance(out, bytes) else out
        return Result(step, command, f'timed out after {timeout} s',
                      time.perf_counter() - start, out)
    status = 'ok' if proc.returncode == 0 else f'failed (exit {proc.returncode})'
    output = proc.stdout if proc.returncode == 0 else proc.stdout + '\n' + proc.stderr[-3000:]
    return Result(step, command, status, time.perf_counter() - start, output)


def mmcv_ops_on(device: str) -> Optional[str]:
    """None when mmcv's RoIAlign runs on ``device``; else why not (Mask R-CNN needs it)."""
    try:
        import torch
        from mmcv.ops import RoIAlign
        feat = torch.rand(1, 1, 8, 8, device=device)
        RoIAlign((2, 2), 1.0)(feat, torch.tensor([[0, 0, 0, 4, 4.]], device=device))
        return None
    except Exception as exc:  # ImportError, or mmcv built without this device's ops
        return (f'mmcv RoIAlign does not run on {device} ({type(exc).__name__}: '
                f'{str(exc).splitlines()[0][:120] if str(exc) else ""}); build mmcv with its '
                'CUDA ops (MMCV_WITH_OPS=1 FORCE_CUDA=1 pip install --no-build-isolation '
                'mmcv==2.1.0)')


# ------------------------------------------------------------------ the report
def environment(device: str) -> Dict[str, str]:
    """The machine and the versions the figures belong to."""
    import torch
    env = {'date (UTC)': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'),
           'device': device}
    if device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        env['GPU'] = f'{props.name}, {props.total_memory / 2 ** 30:.0f} GiB'
        env['CUDA'] = f'{torch.version.cuda} (cuDNN {torch.backends.cudnn.version()})'
    env['CPU'] = _cpu_name()
    env['torch'] = torch.__version__
    try:
        import onnxruntime
        env['onnxruntime'] = (f'{onnxruntime.__version__} '
                              f'({", ".join(onnxruntime.get_available_providers())})')
    except ImportError:
        env['onnxruntime'] = 'not installed'
    return env


def _cpu_name() -> str:
    """Model, vendor, ISA and extensions (:func:`convnext_backbone.cpu_isa.describe_cpu`)."""
    from convnext_backbone import cpu_isa
    info = cpu_isa.read_cpuinfo()
    return cpu_isa.describe_cpu(info._replace(model=info.model or platform.processor()
                                              or platform.machine()))


def report(env: Dict[str, str], results: Sequence[Result], argv: Sequence[str]) -> str:
    """The Markdown report: environment, one table of every command (step, command, status,
    seconds), then each command's output."""
    lines = ['# GPU check', '',
             f'- command: `python tools/gpu_check.py {" ".join(argv)}`'.rstrip()]
    lines += [f'- {key}: {value}' for key, value in env.items()]
    lines += ['', '| step | command | status | seconds |', '|---|---|---|---|']
    for r in results:
        command = f'`{r.command.text()}`' if r.command else '-'
        lines.append(f'| {r.step} | {command} | {r.status} | {r.seconds:.0f} |')
    for r in results:
        if r.output.strip():
            title = r.command.text() if r.command else r.step
            lines += ['', f'## {r.step}: `{title}`', '', r.output.strip()]
    return '\n'.join(lines) + '\n'


# ------------------------------------------------------------------ the onnx step itself
def onnx_case(args) -> None:
    """Export ConvNeXt-T's backbone (our Mask R-CNN config, random weights) to ONNX, run it in
    onnxruntime's execution provider for ``args.device`` and the eager model on the device, and
    print a Markdown table: provider used, max relative difference, median seconds."""
    import statistics

    import onnxruntime as ort
    import torch

    import convnext_backbone  # noqa: F401
    from convnext_backbone.deploy import OnnxModel, build_model, export_onnx, load_config, wrap
    from convnext_backbone.deploy.preprocess import size_divisor
    from convnext_backbone.deploy.verify import images_for
    provider = 'CUDAExecutionProvider' if args.device == 'cuda' else 'CPUExecutionProvider'
    if provider not in ort.get_available_providers():
        print(f'skipped: onnxruntime {ort.__version__} has no {provider} (providers: '
              f'{", ".join(ort.get_available_providers())}); install onnxruntime-gpu')
        return
    shape, batch, reps = ((64, 64), 1, 2) if args.dry_run else ((224, 224), 8, 20)
    model = build_model(load_config(os.path.join(REPO, OUR_MASKRCNN)))
    export_onnx(wrap(model, 'backbone'), 'backbone', args.out, shape, size_divisor(model))
    graph = OnnxModel(args.out, providers=[provider, 'CPUExecutionProvider'])
    images = images_for(shape, batch=batch)
    model = model.to(args.device).eval()  # export leaves the wrapped model in training mode

    def eager():
        with torch.no_grad():
            x = model.data_preprocessor(dict(inputs=list(images.to(args.device))))['inputs']
            outs = model.backbone(x)
        if args.device == 'cuda':
            torch.cuda.synchronize()
        return outs
    runs = {'eager (torch)': eager, 'onnxruntime': lambda: graph(images)}
    first = {name: run() for name, run in runs.items()}
    ref = [o.float().cpu() for o in first['eager (torch)']]
    got = [torch.as_tensor(a) for a in first['onnxruntime'].values()]
    diff = max(float((g - r).abs().max() / r.abs().max()) for g, r in zip(got, ref))
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f'ConvNeXt-T backbone ({OUR_MASKRCNN}, random weights), {batch}x3x{shape[0]}x{shape[1]}'
          f'; session providers: {", ".join(graph.session.get_providers())}; onnxruntime '
          'includes host-device copies of input and outputs\n')
    print('| runtime | median s | images/s | max rel diff to eager |\n|---|---|---|---|')
    for name, t in times.items():
        med = statistics.median(t)
        print(f'| {name} | {med:.4f} | {batch / med:.1f} | '
              f'{"-" if name.startswith("eager") else f"{diff:.1e}"} |')
    if diff > 1e-2:
        sys.exit(f'error: onnxruntime on {provider} differs from eager by {diff:.2e}')


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.onnx_case:
        onnx_case(args)
        return 0
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('gpu-check: no CUDA device on this machine, nothing to check (`python '
              'tools/gpu_check.py --device cpu --dry-run` checks the script itself)')
        return 0
    work_dir = os.path.join(os.path.dirname(os.path.abspath(args.out)), 'gpu_check_files')
    write_mmdet_config(work_dir)
    commands = plan(args, work_dir)
    results = []
    for step, step_commands in commands.items():
        why_not = mmcv_ops_on(args.device) if step == 'maskrcnn' else None
        for command in step_commands:
            if why_not:
                results.append(Result(step, command, f'skipped: {why_not}'))
                continue
            print(f'gpu-check: {step}: {command.text()}', flush=True)
            results.append(run_command(step, command, args.step_timeout))
            print(f'gpu-check: {step}: {results[-1].status} ({results[-1].seconds:.0f} s)',
                  flush=True)
    text = report(environment(args.device), results, argv)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text)
    print(f'gpu-check: report written to {args.out}')
    return 0 if all(r.status == 'ok' or r.status.startswith('skipped') for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
