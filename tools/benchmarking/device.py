"""Where and in what precision the benchmark's steps run: ``--device cpu|cuda`` and
``--dtype fp32|bf16|fp16``.

Models and inputs are moved to the device once; every step runs under ``torch.autocast`` in
the chosen dtype (fp32: no autocast), and on CUDA ends with ``torch.cuda.synchronize()`` so a
step's wall time is the GPU's work, not the launch. Peak memory on CUDA is the caching
allocator's peak of allocated bytes during one step, above what was allocated before it.
"""
import gc
from typing import Callable

import torch

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def synchronize(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def on_device(step: Callable[[], object], device: str, dtype: str) -> Callable[[], object]:
    """``step`` under autocast in ``dtype`` on ``device`` (fp32: as it is), synchronized."""
    low = DTYPES[dtype]

    def run():
        with torch.autocast(device, dtype=low, enabled=dtype != 'fp32'):
            out = step()
        synchronize(device)
        return out
    return run


def cuda_peak_step_memory_mb(step: Callable[[], object]) -> float:
    """Peak CUDA memory allocated during one ``step`` above what was allocated before it, in
    MiB (activations, gradients, temporaries; the allocator's cache excluded). Two steps first
    (warm-up: cuDNN's algorithm search, optimizer state)."""
    step()
    step()
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2 ** 20


def gpu_name() -> str:
    """The GPU, its memory, and the torch / CUDA / cuDNN versions, for the report."""
    props = torch.cuda.get_device_properties(0)
    return (f'{props.name} ({props.total_memory / 2 ** 30:.0f} GiB), torch {torch.__version__}, '
            f'CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}')


def gemm_gflops_cuda(dtype: str, n: int = 8192, reps: int = 10) -> float:
    """GFLOP/s of an n x n matmul on the GPU in ``dtype`` (fp32: TF32 as torch's settings
    allow; by default true fp32)."""
    a = torch.randn(n, n, device='cuda', dtype=DTYPES[dtype])
    b = torch.randn(n, n, device='cuda', dtype=DTYPES[dtype])
    a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (start.elapsed_time(end) / 1e3) / 1e9
