"""Our ConvNeXt backbone against timm and mmpretrain, side by side in one process.

    python tools/benchmark_backbone.py [--arch v1-tiny] [--batch 8] [--size 224] [--threads 2]
        [--isa native|avx2|avx512] [--memory-format both|channels_first|channels_last]
        [--modes infer,train] [--warmup 2] [--reps 9] [--no-memory] [--compile] [--ablation]
        [--profile] [--per-stage] [--device cpu|cuda] [--dtype fp32|bf16|fp16]
    python tools/benchmark_backbone.py --mode maskrcnn [--batch 2] [--size 320] [--height H]
    python tools/benchmark_backbone.py --mode upernet [--batch 2] [--size 512]
    python tools/benchmark_backbone.py --mode with_cp [--batch 2] [--size 512]

``--mode backbone`` (default): ours, timm ``convnext_*``/``convnextv2_*`` (``features_only``) and
mmpretrain's ``ConvNeXt`` (``gap_before_final_norm=False``), same arch, same weights (copied
through our converter, checked: every peer's features must equal ours), same fp32 input.
``infer`` = ``eval()`` + ``no_grad`` forward; ``train`` = forward + backward of the sum of all
outputs (gradients set to None first; no optimizer). Peers run with channels-first input and,
as ``*_cl``, as channels-last models with channels-last input; ours takes the channels-first input.
``--ablation`` adds ours with each fast-path technique switched off; every case of ours notes the
block paths ``convnext_backbone.models.fast_path.block_path`` chose.
``--mode maskrcnn`` / ``--mode upernet``: Mask R-CNN / UperNet ConvNeXt-T, our config vs mmdet's /
mmseg's own (mmpretrain backbone), same synthetic batch, same weights (checked: same loss);
``train`` = one ``model.train_step(data, optim_wrapper)`` (fp32 OptimWrapper with each config's
own optimizer constructor), ``infer`` = one ``model.test_step(data)``. ``--mode with_cp``: our
training step with and without ``with_cp`` (time and activation memory).

``--isa avx2`` / ``avx512`` runs everything (in a fresh process: the libraries read the caps once)
with ATen, oneDNN and MKL capped to that instruction set; AVX2 on an AVX-512 CPU emulates the
AVX2-only CPUs many users have. The report prints what each library actually runs (asked of the
libraries), and the tool refuses to run if that is not the ISA asked for. ``--profile`` adds a
table of time per kind of op (GEMMs, depthwise convolution, LayerNorm, GELU, copies, ...);
``--per-stage`` one of time per part of the network (stem, each stage's blocks, downsampling
layers, output norms) with paired ratios to ours, from the timed inference steps themselves.

``--device cuda`` runs every case on the GPU (each step ends with ``torch.cuda.synchronize()``;
peak memory is the CUDA allocator's peak during a step; the GEMM floor is an 8192² matmul in
the dtype); ``--dtype bf16|fp16`` runs every step under ``torch.autocast`` (host-model training
steps through the mixed-precision optim wrapper: mmengine's ``AmpOptimWrapper`` on CUDA, our
``CPUAutocastOptimWrapper`` for bf16 on the CPU), the features checked against our fp32 ones
within that dtype's tolerance. ``--height``: image height of the maskrcnn/upernet batch
(``--size`` is the width), e.g. ``--size 1333 --height 800``.

Timing: implementations are interleaved (in turn, the order rotated every repetition) after
``--warmup`` steps each; the table gives the median, the spread (inter-quartile range / median),
the ratio peer/ours (> 1: ours is faster) as a ratio of medians and as the median of the
per-repetition ratios with its 95% confidence interval (``benchmarking/paired.py``: a
repetition's two steps saw the same machine, so this one survives the drift of a noisy machine;
read it first), the page faults a step took, and the fraction of the "GEMM floor": the model's FLOPs
(mmengine's FlopAnalyzer, multiply-adds x 2; a training step counted as 3x the forward) divided by
the fp32 GFLOP/s of a 2048x2048 matmul measured in the same run. Denormals are flushed for every
implementation alike (``torch.set_flush_denormal(True)``, as our tools do); ``--keep-denormals``
turns that off. Peak memory: each implementation runs again in a fresh subprocess; after a
warm-up step, freed heap returned to the OS (``malloc_trim``) and the kernel's high-water mark
reset, one step runs; reported is peak resident memory minus resident memory before the step
(activations, gradients, temporaries and allocator slack; Linux only).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import torch

import convnext_backbone  # noqa: F401  (registers our modules, applies the compat fixes)

from benchmarking import isa, peers
from benchmarking.cases import IMPLS, make_cases
from benchmarking.device import DTYPES, cuda_peak_step_memory_mb, gemm_gflops_cuda, gpu_name
from benchmarking.measure import (
    gemm_gflops,
    machine,
    peak_step_memory_mb,
    run_interleaved,
    set_heap,
)
from benchmarking.op_profile import profile_step, profile_table
from benchmarking.report import summarize
from benchmarking.stage_times import parts_table, time_parts

DEFAULTS = {  # mode: (batch, size, modes)
    'backbone': (8, 224, 'infer,train'), 'maskrcnn': (2, 320, 'train,infer'),
    'upernet': (2, 512, 'infer,train'), 'with_cp': (2, 512, 'train')}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mode', default='backbone', choices=sorted(DEFAULTS))
    p.add_argument('--arch', default='v1-tiny', choices=sorted(peers.PEER_ARCHS))
    p.add_argument('--batch', type=int, default=None, help='8 (backbone), 2 (others)')
    p.add_argument('--size', type=int, default=None, help='224 (backbone), 320 (maskrcnn), 512')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--clock', default='wall', choices=['wall', 'process'],
                   help='process: CPU time of the process (use with --threads 1 on a busy '
                        'machine: time the CPU spent on other processes is left out)')
    p.add_argument('--isa', default='native', choices=sorted(isa.ISA_ENV),
                   help='run under this instruction set (ATen, oneDNN and MKL capped to it in a '
                        'fresh process; checked): avx2 emulates an AVX2-only CPU on AVX-512')
    p.add_argument('--memory-format', default='both',
                   choices=['both', 'channels_first', 'channels_last'])
    p.add_argument('--modes', default=None, help='infer,train (maskrcnn/upernet: train = one '
                   'train_step with the optimizer, infer = one test_step)')
    p.add_argument('--impls', default=','.join(IMPLS), help='backbone mode: subset of ' +
                   ','.join(IMPLS))
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--reps', type=int, default=9)
    p.add_argument('--no-memory', action='store_true', help='skip the peak-memory subprocesses')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile every implementation the same way (compile time reported)')
    p.add_argument('--ablation', action='store_true',
                   help='backbone mode: ours, and ours without each fast-path technique')
    p.add_argument('--profile', action='store_true',
                   help='also: time per kind of op (torch.profiler) of every case')
    p.add_argument('--per-stage', action='store_true',
                   help='backbone mode: also time the stem, each stage\'s blocks, each '
                        'downsampling layer and the output norms of every inference case, '
                        'with paired ratios to ours')
    p.add_argument('--keep-denormals', action='store_true')
    p.add_argument('--retain-heap', action='store_true',
                   help='glibc: no mmap, no trimming (no page faults for fresh memory)')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--dtype', default='fp32', choices=sorted(DTYPES),
                   help='bf16/fp16: every step under torch.autocast in that dtype')
    p.add_argument('--height', type=int, default=None,
                   help='maskrcnn/upernet: image height (default: --size, the width)')
    p.add_argument('--probe', help=argparse.SUPPRESS)  # internal: memory of one implementation
    args = p.parse_args(argv)
    batch, size, modes = DEFAULTS[args.mode]
    args.batch, args.size = args.batch or batch, args.size or size
    args.modes = args.modes or modes
    if args.clock == 'process' and args.threads != 1:
        p.error('--clock process needs --threads 1 (waiting OpenMP threads spin, using CPU)')
    if args.device == 'cuda':
        if not torch.cuda.is_available():
            p.error('--device cuda: no CUDA device here (torch.cuda.is_available() is False)')
        cpu_only = [flag for flag, on in (('--isa', args.isa != 'native'), ('--ablation',
                    args.ablation), ('--profile', args.profile), ('--per-stage', args.per_stage),
                    ('--clock process', args.clock == 'process')) if on]
        if cpu_only:
            p.error(f'{", ".join(cpu_only)}: CPU-only (they measure the CPU fast path); drop '
                    'them with --device cuda')
    elif args.dtype == 'fp16':
        p.error('--dtype fp16 on the CPU: fp16 autocast has no fast CPU kernels and needs loss '
                'scaling; use --dtype bf16 (or --device cuda)')
    elif args.dtype == 'bf16' and args.mode == 'maskrcnn':
        p.error("--mode maskrcnn --dtype bf16 on the CPU: this tool autocasts inference and "
                "its loss check directly, where mmcv's CPU nms/RoIAlign take fp32 only (training "
                'with CPUAutocastOptimWrapper keeps them in fp32: docs/mixed_precision.md); use '
                '--dtype fp32 (or --device cuda)')
    if args.height is not None and args.mode not in ('maskrcnn', 'upernet'):
        p.error('--height is for --mode maskrcnn/upernet (the backbone modes use square inputs)')
    if args.per_stage and (args.mode != 'backbone' or 'infer' not in args.modes.split(',')):
        p.error('--per-stage times the parts of the backbones\' inference steps: use it with '
                '--mode backbone and infer among --modes')
    return args


def count_macs(args) -> int:
    """Multiply-adds of our backbone's forward (mmengine's FlopAnalyzer, a jit trace)."""
    from mmengine.analysis import FlopAnalyzer
    model = peers.build_backbones(args.arch, ['ours'])['ours'].eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    return FlopAnalyzer(model, (x,)).unsupported_ops_warnings(False) \
        .uncalled_modules_warnings(False).total()


def probe(args) -> None:
    """In a subprocess: FLOPs (``--probe flops``; a jit trace leaves the allocator's heap in a
    state that changes later timings, so never in the timing process), or the peak resident
    memory of one step of each case of one implementation."""
    if args.probe == 'flops':
        return print(json.dumps({'macs': count_macs(args)}))
    peak = cuda_peak_step_memory_mb if args.device == 'cuda' else peak_step_memory_mb
    result = {case.mode: peak(case.step) for case in make_cases(args, only=args.probe)}
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
    isa.reexec_under(args.isa, os.path.abspath(__file__), argv)  # returns if already in effect
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(not args.keep_denormals)
    if args.probe:
        return probe(args)
    in_use = isa.isa_in_use()
    isa.check_isa(args.isa, in_use)
    load_start = os.getloadavg()
    macs = run_probes(argv, ['flops']).get('flops', {}).get('macs') \
        if args.mode == 'backbone' else None
    if args.retain_heap:
        heap = set_heap(True)
    cases = make_cases(args)
    for case in cases:
        if macs:
            case.flops = 2 * macs * (3 if case.mode == 'train' else 1)
    if args.per_stage:
        for case in cases:
            if case.mode == 'infer' and case.model is not None:
                time_parts(case, case.model)
    if not args.retain_heap:
        heap = set_heap(False)
    def gemm_rate():
        if args.device == 'cuda':
            return gemm_gflops_cuda(args.dtype)
        return gemm_gflops(clock=args.clock)
    gflops = gemm_rate()
    run_interleaved(cases, args.warmup, args.reps, args.clock)
    gflops = statistics.median([gflops, gemm_rate()])
    load_end = os.getloadavg()
    profiles = [profile_step(c.step) for c in cases] if args.profile else None
    if not args.no_memory and not args.compile:
        mem = run_probes(argv, sorted({c.name for c in cases}))
        for c in cases:
            c.peak_mb = mem.get(c.name, {}).get(c.mode)
    height = args.height or args.size
    where = f'{args.device}, {args.dtype}' + (f', {args.isa}' if args.device == 'cpu' else '')
    print(f'## {args.mode}: {args.arch}, batch {args.batch}, {height}x{args.size}, {where}'
          f'{", torch.compile" if args.compile else ""}\n')
    print(f'- command: `python tools/benchmark_backbone.py {" ".join(argv)}`')
    print(f'- machine: {machine()}; denormals flushed: {not args.keep_denormals}; {heap}')
    if args.device == 'cuda':
        print(f'- GPU: {gpu_name()}; peak MB = CUDA memory allocated during a step')
    print(f'- ISA in use (--isa {args.isa}): {isa.describe(in_use, args.isa)}')
    print(f'- load average (1/5/15 min) at start {"/".join(f"{v:.2f}" for v in load_start)}, '
          f'at end {"/".join(f"{v:.2f}" for v in load_end)}')
    gemm = '8192x8192 ' + args.dtype if args.device == 'cuda' else '2048x2048 fp32'
    print(f'- {gemm} GEMM: {gflops:.0f} GFLOP/s (GEMM floor = FLOPs / this)')
    if cases[0].flops:
        fwd = min(c.flops / (3 if c.mode == 'train' else 1) for c in cases)
        print(f'- FLOPs: {fwd / 1e9:.1f} G per forward (FlopAnalyzer multiply-adds x 2; '
              f'a training step counted as 3x)')
    print(f'- {args.warmup} warm-up + {args.reps} timed steps each, interleaved per mode; '
          f'{"process CPU time" if args.clock == "process" else "wall time"}')
    if args.compile:
        print('- first call (compile + run): ' + ', '.join(
            f'{c.name} {c.mode} {c.first_s:.0f} s' for c in cases))
    print()
    print(summarize(cases, gflops))
    if args.per_stage:
        print('\n### Time per part of the network (forward hooks in the timed inference steps)'
              '\n')
        print(parts_table(cases))
    if profiles:
        print('\n### Time per kind of op (torch.profiler, self CPU time, 2 steps each)\n')
        print(profile_table([f'{c.name} {c.mode}' for c in cases], profiles))


if __name__ == '__main__':
    from convnext_backbone.cli import run_tool
    run_tool(main)
