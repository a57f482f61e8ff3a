"""Our ConvNeXt backbone against timm and mmpretrain, side by side in one process.

    python tools/benchmark_backbone.py [--arch v1-tiny] [--batch 8] [--size 224] [--threads 2]
        [--memory-format both|channels_first|channels_last] [--modes infer,train]
        [--warmup 2] [--reps 9] [--no-memory] [--compile]
    python tools/benchmark_backbone.py --mode maskrcnn [--batch 2] [--size 320]
    python tools/benchmark_backbone.py --mode with_cp [--batch 2] [--size 512]

``--mode backbone`` (default): ours, timm ``convnext_*``/``convnextv2_*`` (``features_only``) and
mmpretrain's ``ConvNeXt`` (``gap_before_final_norm=False``), same arch, same weights (copied
through our converter, checked: every peer's features must equal ours), same fp32 input.
``infer`` = ``eval()`` + ``no_grad`` forward; ``train`` = forward + backward of the sum of all
outputs (gradients set to None first; no optimizer). Peers run with channels-first input and,
as ``*_cl``, as channels-last models with channels-last input; ours takes the channels-first input.
``--mode maskrcnn``: one ``model.train_step(data, optim_wrapper)`` (fp32 OptimWrapper with each
config's own optimizer constructor) of Mask R-CNN ConvNeXt-T, our config vs mmdet's own, same
synthetic batch, same weights. ``--mode with_cp``: our training step with and without
``with_cp`` (time and activation memory).

Timing: implementations are interleaved (round robin, the order rotated every repetition) after
``--warmup`` steps each; the table gives the median, the spread (inter-quartile range / median),
the ratio peer/ours (> 1: ours is faster) and the fraction of the "GEMM floor": the model's FLOPs
(mmengine's FlopAnalyzer, multiply-adds x 2; a training step counted as 3x the forward) divided by
the fp32 GFLOP/s of a 2048x2048 matmul measured in the same run. Denormals are flushed for every
implementation alike (``torch.set_flush_denormal(True)``, as our tools do); ``--keep-denormals``
turns that off. Peak memory: each implementation runs again in a fresh subprocess; after a
warm-up step, freed heap returned to the OS (``malloc_trim``) and the kernel's high-water mark
reset, one step runs; reported is peak resident memory minus resident memory before the step
(activations, gradients, temporaries and allocator slack; Linux only).
"""
import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
from typing import List

import torch

import convnext_backbone  # noqa: F401  (registers our modules, applies the compat fixes)
from convnext_backbone.benchmark import detectors, peers
from convnext_backbone.benchmark.measure import (Case, gemm_gflops, machine, peak_step_memory_mb,
                                                 run_interleaved, set_heap)
from convnext_backbone.benchmark.report import summarize
from convnext_backbone.models import ConvNeXt
from convnext_backbone.models.dispatch import SWITCHES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASKRCNN_OURS = os.path.join(REPO, 'configs', 'maskrcnn_convnext_t_coco.py')
IMPLS = ('ours', 'timm', 'timm_cl', 'mmpretrain', 'mmpretrain_cl')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mode', default='backbone', choices=['backbone', 'maskrcnn', 'with_cp'])
    p.add_argument('--arch', default='v1-tiny', choices=sorted(peers.PEER_ARCHS))
    p.add_argument('--batch', type=int, default=None, help='8 (backbone), 2 (maskrcnn/with_cp)')
    p.add_argument('--size', type=int, default=None, help='224 (backbone), 320 / 512')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--memory-format', default='both',
                   choices=['both', 'channels_first', 'channels_last'])
    p.add_argument('--modes', default='infer,train', help='backbone mode: infer,train')
    p.add_argument('--impls', default=','.join(IMPLS), help='backbone mode: subset of ' +
                   ','.join(IMPLS))
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--reps', type=int, default=9)
    p.add_argument('--no-memory', action='store_true', help='skip the peak-memory subprocesses')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile every implementation the same way (compile time reported)')
    p.add_argument('--ablation', action='store_true',
                   help='backbone mode: ours, and ours without each fast-path technique')
    p.add_argument('--keep-denormals', action='store_true')
    p.add_argument('--retain-heap', action='store_true',
                   help='glibc: no mmap, no trimming (no page faults for fresh memory)')
    p.add_argument('--probe', help=argparse.SUPPRESS)  # internal: memory of one implementation
    args = p.parse_args(argv)
    defaults = {'backbone': (8, 224), 'maskrcnn': (2, 320), 'with_cp': (2, 512)}[args.mode]
    args.batch = args.batch or defaults[0]
    args.size = args.size or defaults[1]
    return args


# ----------------------------------------------------------------------------- cases
def _forward(model, x):
    def step():
        model.eval()
        with torch.no_grad():
            return model(x)
    return step


def _train(model, x):
    def step():
        model.train()
        model.zero_grad(set_to_none=True)
        outs = model(x)
        sum(o.float().sum() for o in outs).backward()
    return step


# What each fast-path technique buys: ours with one of them off (``SWITCHES`` fields set around
# each step), or the whole block op by op (None: ``fast_path=False``).
ABLATIONS = {
    'no-onednn': dict(onednn=False),
    'no-fold': dict(fold_layer_scale=False),
    'no-dwgrad': dict(depthwise_weight_grad=False),
    'no-chunks': dict(chunk_elements=1 << 62),
    'plain': None,
}


def _switched(step, changes):
    @contextlib.contextmanager
    def switched():
        saved = {k: getattr(SWITCHES, k) for k in changes}
        for k, v in changes.items():
            setattr(SWITCHES, k, v)
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(SWITCHES, k, v)

    def run():
        with switched():
            return step()
    return run


def _maybe_compile(model, args):
    return torch.compile(model) if args.compile else model


def backbone_cases(args, only=None) -> List[Case]:
    impls = [i for i in args.impls.split(',') if only is None or i == only]
    if args.memory_format != 'both':
        keep = args.memory_format == 'channels_last'
        impls = [i for i in impls if i == 'ours' or i.endswith('_cl') == keep]
    models = peers.build_backbones(args.arch, [i.split('_')[0] for i in impls] + ['ours'])
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cases = []
    for impl in impls:
        model = models[impl.split('_')[0]]
        inp, fmt = (x_cl, 'channels_last') if impl.endswith('_cl') else (x, 'channels_first')
        if impl.endswith('_cl'):
            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        fn = _maybe_compile(model, args)
        for mode in args.modes.split(','):
            make = {'infer': _forward, 'train': _train}[mode]
            cases.append(Case(impl, mode, fmt, make(fn, inp)))
    if args.ablation:
        for name, changes in ABLATIONS.items():
            if only is None or only == f'ours -{name}':
                model = models['ours']
                if changes is None:
                    model = ConvNeXt(arch=args.arch, fast_path=False)
                    model.load_state_dict(models['ours'].state_dict())
                for mode in args.modes.split(','):
                    make = {'infer': _forward, 'train': _train}[mode]
                    step = _switched(make(model, x), changes or {})
                    cases.append(Case(f'ours -{name}', mode, 'channels_first', step))
    if only is None:  # features must equal ours before any timing counts
        ours = models['ours'].eval()
        with torch.no_grad():
            ref = ours(x)
            for case in cases:
                if case.mode == 'infer' and case.name != 'ours':
                    outs = case.first_call()
                    if case.name.startswith('timm'):
                        outs = peers.output_norms(ours)(outs)
                    diff = peers.max_rel_diff(outs, ref)
                    case.note = f'max rel diff {diff:.1e}'
                    if diff > 1e-4:
                        raise RuntimeError(f'{case.name} features differ from ours: {diff:.2e}')
    return cases


def count_macs(args) -> int:
    """Multiply-adds of our backbone's forward (mmengine's FlopAnalyzer, a jit trace)."""
    from mmengine.analysis import FlopAnalyzer
    model = peers.build_backbones(args.arch, ['ours'])['ours'].eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    return FlopAnalyzer(model, (x,)).unsupported_ops_warnings(False) \
        .uncalled_modules_warnings(False).total()


def maskrcnn_cases(args, only=None) -> List[Case]:
    from mmengine.logging import MMLogger
    MMLogger.get_instance('benchmark_backbone', log_level='WARNING')  # quiet constructors
    built = detectors.build_detectors(MASKRCNN_OURS)
    data = detectors.detection_batch(args.batch, args.size)
    cases, losses = [], {}
    for name, (model, optim) in built.items():
        if only is None or name == only:
            def step(model=model, optim=optim):
                return model.train_step(data, optim)
            cases.append(Case(name, 'train_step', 'channels_first', step))
            losses[name] = detectors.first_loss(model, data)
    for case in cases:
        case.note = f'loss {losses[case.name]:.6f}'
    return cases


def with_cp_cases(args, only=None) -> List[Case]:
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    cases = []
    base = peers.build_backbones(args.arch, ['ours'])['ours']
    for name, with_cp in (('ours', False), ('ours with_cp', True)):
        if only is None or name == only:
            model = ConvNeXt(arch=args.arch, with_cp=with_cp)
            model.load_state_dict(base.state_dict())
            cases.append(Case(name, 'train', 'channels_first', _train(model, x)))
    return cases


def make_cases(args, only=None) -> List[Case]:
    return {'backbone': backbone_cases, 'maskrcnn': maskrcnn_cases,
            'with_cp': with_cp_cases}[args.mode](args, only)


def probe(args) -> None:
    """In a subprocess: FLOPs (``--probe flops``; a jit trace leaves the allocator's heap in a
    state that changes later timings, so never in the timing process), or the peak resident
    memory of one step of each case of one implementation."""
    if args.probe == 'flops':
        return print(json.dumps({'macs': count_macs(args)}))
    result = {case.mode: peak_step_memory_mb(case.step)
              for case in make_cases(args, only=args.probe)}
    print(json.dumps(result))


def run_probes(argv, names) -> dict:
    out = {}
    for name in names:
        cmd = [sys.executable, os.path.abspath(__file__), *argv, '--probe', name]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f'probe {name} failed:\n{proc.stderr[-2000:]}', file=sys.stderr)
            continue
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(not args.keep_denormals)
    if args.probe:
        return probe(args)
    load_start = os.getloadavg()
    macs = run_probes(argv, ['flops']).get('flops', {}).get('macs') \
        if args.mode == 'backbone' else None
    if args.retain_heap:
        heap = set_heap(True)
    cases = make_cases(args)
    for case in cases:
        if macs:
            case.flops = 2 * macs * (3 if case.mode == 'train' else 1)
    if not args.retain_heap:
        heap = set_heap(False)
    gflops = gemm_gflops()
    run_interleaved(cases, args.warmup, args.reps)
    gflops = statistics.median([gflops, gemm_gflops()])
    load_end = os.getloadavg()
    if not args.no_memory and not args.compile:
        mem = run_probes(argv, sorted({c.name for c in cases}))
        for c in cases:
            c.peak_mb = mem.get(c.name, {}).get(c.mode)
    print(f'## {args.mode}: {args.arch}, batch {args.batch}, {args.size}x{args.size}, fp32'
          f'{", torch.compile" if args.compile else ""}\n')
    print(f'- command: `python tools/benchmark_backbone.py {" ".join(argv)}`')
    print(f'- machine: {machine()}; denormals flushed: {not args.keep_denormals}; {heap}')
    print(f'- load average (1/5/15 min) at start {"/".join(f"{v:.2f}" for v in load_start)}, '
          f'at end {"/".join(f"{v:.2f}" for v in load_end)}')
    print(f'- 2048x2048 fp32 GEMM: {gflops:.0f} GFLOP/s (GEMM floor = FLOPs / this)')
    if cases[0].flops:
        fwd = min(c.flops / (3 if c.mode == 'train' else 1) for c in cases)
        print(f'- FLOPs: {fwd / 1e9:.1f} G per forward (FlopAnalyzer multiply-adds x 2; '
              f'a training step counted as 3x)')
    print(f'- {args.warmup} warm-up + {args.reps} timed steps each, interleaved per mode')
    if args.compile:
        print('- first call (compile + run): ' + ', '.join(
            f'{c.name} {c.mode} {c.first_s:.0f} s' for c in cases))
    print()
    print(summarize(cases, gflops))


if __name__ == '__main__':
    main()
