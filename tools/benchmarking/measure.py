"""Timing and memory for the side-by-side benchmark: interleaved steps, the GEMM floor, peak RSS.

These machines are noisy, so implementations are never timed one after the other: every
repetition runs each of them once, in an order rotated every repetition, and the report takes
medians and states the spread.
"""
import ctypes
import gc
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from convnext_backbone import cpu_isa


@dataclass
class Case:
    """One implementation in one mode, and what was measured of it."""
    name: str               # implementation
    mode: str               # infer | train | train_step
    fmt: str                # input memory format
    step: Callable[[], object]
    flops: Optional[float] = None
    times: List[float] = field(default_factory=list)
    faults: List[int] = field(default_factory=list)
    peak_mb: Optional[float] = None
    note: str = ''
    first_s: Optional[float] = None  # the first call (compile time under torch.compile)
    model: Optional[object] = None  # the module the step runs (backbone mode)
    parts: Dict[str, List[float]] = field(default_factory=dict)  # --per-stage: seconds a step

    def first_call(self):
        """Runs ``step`` once; the first time, records how long it took."""
        start = time.perf_counter()
        out = self.step()
        if self.first_s is None:
            self.first_s = time.perf_counter() - start
        return out


def gemm_gflops(n: int = 2048, reps: int = 7, clock: str = 'wall') -> float:
    """fp32 GFLOP/s of an n x n matmul (median of ``reps``): the machine's arithmetic rate."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    now = CLOCKS[clock]
    for _ in range(reps):
        start = now()
        a @ b
        times.append(now() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


CLOCKS = {'wall': time.perf_counter, 'process': time.process_time}


def run_interleaved(cases: List[Case], warmup: int, reps: int, clock: str = 'wall') -> None:
    """Per mode (an inference loop and a training loop leave the allocator in different states,
    so modes are not mixed): ``warmup`` steps of each case, then ``reps`` repetitions over all
    cases, the order rotated every repetition. Fills ``times`` and ``faults`` (minor page faults
    a step).
    ``clock='process'``: CPU time of this process instead of wall time; with one thread it
    leaves out the time other processes take the CPU from us (busy shared machines)."""
    now = CLOCKS[clock]
    for mode in dict.fromkeys(c.mode for c in cases):
        group = [c for c in cases if c.mode == mode]
        for case in group:
            for _ in range(warmup):
                case.first_call()
        for rep in range(reps):
            shift = rep % len(group)
            for case in group[shift:] + group[:shift]:
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = now()
                case.step()
                case.times.append(now() - start)
                case.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)


def _status_kb(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def peak_step_memory_mb(step: Callable[[], object]) -> float:
    """Peak resident memory of one ``step`` above the resident memory before it, in MiB (Linux):
    activations, gradients, temporaries and allocator slack. Two steps first (warm-up), then
    freed heap returned to the OS and the kernel's high-water mark reset."""
    step()
    step()
    gc.collect()
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    before = _status_kb('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    step()
    return (_status_kb('VmHWM') - before) / 1024


def set_heap(retain: bool) -> str:
    """``retain``: glibc never maps large blocks separately nor returns freed memory, so no step
    pays page faults for fresh memory (what a process that once held a large, now free heap
    sees). Otherwise glibc's own behaviour, from a trimmed heap. Returns a line for the report."""
    libc = ctypes.CDLL('libc.so.6')
    if retain:
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap'ed blocks
        libc.mallopt(-1, ctypes.c_int(2 ** 31 - 1))  # M_TRIM_THRESHOLD: never trim
        return 'glibc malloc: no mmap, no trimming (--retain-heap)'
    gc.collect()
    libc.malloc_trim(0)
    return 'glibc malloc defaults, heap trimmed before timing'


def machine() -> str:
    """CPU (model, vendor, ISA and extensions from its flags), CPU count, torch build (ATen's
    capability) and thread count, for the report."""
    info = cpu_isa.read_cpuinfo()
    cpu = cpu_isa.describe_cpu(info._replace(model=info.model or platform.processor()
                                             or platform.machine()))
    return (f'{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} '
            f'({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads')
