"""The block MLP's kernels one by one, per ConvNeXt-T stage: oneDNN vs aten (MKL), with and
without fused epilogues, whole MLP variants. What decided the per-ISA GEMM choice of
``convnext_backbone.models.fast_path`` (docs/benchmarks.md, "Where the AVX2 time goes").

    python tools/benchmarking/mlp_kernels.py [--batch 8] [--size 224] [--threads 1]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python tools/benchmarking/mlp_kernels.py

Interleaved repetitions, medians; process CPU time with one thread (robust on a shared machine).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from convnext_backbone.models import fused_linear as fl


def kernels(x, w1, b1, w2, b2, base, h):
    """name -> (step, GEMMs it runs)."""
    def onednn_separate_gelu():
        a = fl.onednn_linear(x, w1, b1)
        torch.ops.aten.gelu_(a)
        return fl.onednn_linear(a, w2, b2, base)
    return {
        'GEMM1 oneDNN': (lambda: fl.onednn_linear(x, w1, b1), 1),
        'GEMM1 oneDNN + GELU epilogue': (lambda: fl.onednn_linear_gelu(x, w1, b1, 'none'), 1),
        'GEMM1 MKL': (lambda: fl.aten_linear(x, w1, b1), 1),
        'GELU pass (aten, in place)': (lambda: torch.ops.aten.gelu_(h), 0),
        'GEMM2 oneDNN': (lambda: fl.onednn_linear(h, w2, b2), 1),
        'GEMM2 oneDNN + add epilogue': (lambda: fl.onednn_linear(h, w2, b2, base), 1),
        'GEMM2 MKL + add (addmm_)': (lambda: fl.aten_linear(h, w2, b2, base), 1),
        'MLP oneDNN fused': (lambda: fl.onednn_linear(
            fl.onednn_linear_gelu(x, w1, b1, 'none'), w2, b2, base), 2),
        'MLP oneDNN, GELU pass': (onednn_separate_gelu, 2),
        'MLP oneDNN fused, chunks': (lambda: fl.onednn_mlp_in_chunks(
            x, w1, b1, w2, b2, base, 'none', 1 << 19), 2),
        'MLP MKL, GELU pass': (lambda: fl.aten_linear(
            fl.aten_linear_gelu(x, w1, b1, 'none'), w2, b2, base), 2),
        'MLP MKL, GELU pass, chunks': (lambda: fl.mkl_mlp_in_chunks(
            x, w1, b1, w2, b2, base, 'none', 1 << 19), 2),
        'MLP as timm (F.linear, F.gelu, F.linear, +)': (
            lambda: F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2) + base, 2),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--reps', type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    print(f'ATen {torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s), '
          f'{"process CPU" if args.threads == 1 else "wall"} time, ms per call (one block)')
    gen = torch.Generator().manual_seed(0)
    for stage, channels in enumerate((96, 192, 384, 768)):
        side = args.size // 4 // 2 ** stage
        rows, hidden = args.batch * side * side, 4 * channels
        x, base = torch.randn(rows, channels, generator=gen), torch.randn(rows, channels)
        h = torch.randn(rows, hidden, generator=gen)
        w1 = torch.randn(hidden, channels, generator=gen) * channels ** -0.5
        w2 = torch.randn(channels, hidden, generator=gen) * hidden ** -0.5
        b1, b2 = torch.randn(hidden, generator=gen), torch.randn(channels, generator=gen)
        steps = kernels(x, w1, b1, w2, b2, base, h)
        times = {name: [] for name in steps}
        for step, _ in steps.values():
            step()
        for _ in range(args.reps):
            for name, (step, _) in steps.items():
                start = clock()
                step()
                times[name].append(clock() - start)
        print(f'\nstage {stage}: C={channels}, rows={rows}')
        for name, (_, gemms) in steps.items():
            med = statistics.median(times[name])
            flops = gemms * 2 * rows * channels * hidden
            rate = f'{flops / med / 1e9:5.0f} GFLOP/s' if gemms else ''
            print(f'  {name:46s} {med * 1e3:8.2f} ms  {rate}')


if __name__ == '__main__':
    main()
