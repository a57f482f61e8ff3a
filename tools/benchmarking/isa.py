"""The instruction set a benchmark runs on: choosing it, and reading back what actually runs.

ATen's vectorised kernels, oneDNN and MKL each pick their code path for the CPU once, when they
first run, and each can be capped by an environment variable. ``--isa avx2`` on an AVX-512 CPU
therefore emulates an AVX2-only CPU (for all three libraries) by running the benchmark again in
a fresh process with those variables set. Nothing is assumed: :func:`isa_in_use` asks each
library what it runs (ATen directly, oneDNN and MKL through their verbose output of one small
call), and :func:`check_isa` refuses to report figures under a label that is not true.
"""
import os
import re
import sys
import tempfile
from typing import Dict, List

import torch

# Caps per ISA: ATen's dispatch, oneDNN's JIT kernels, MKL's sgemm.
ISA_ENV: Dict[str, Dict[str, str]] = {
    'avx2': {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2',
             'MKL_ENABLE_INSTRUCTIONS': 'AVX2'},
    'avx512': {'ATEN_CPU_CAPABILITY': 'avx512', 'ONEDNN_MAX_CPU_ISA': 'AVX512_CORE',
               'MKL_ENABLE_INSTRUCTIONS': 'AVX512'},
    'native': {},
}
_KEYS = sorted({k for env in ISA_ENV.values() for k in env} | {'DNNL_MAX_CPU_ISA'})


def isa_environment(isa: str) -> Dict[str, str]:
    """This process's environment with the caps of ``isa`` (``native``: no caps)."""
    env = {k: v for k, v in os.environ.items() if k not in _KEYS}
    env.update(ISA_ENV[isa])
    return env


def reexec_under(isa: str, script: str, argv: List[str]) -> None:
    """Replace this process by ``script argv`` under ``isa``'s caps, unless they are already in
    effect (the caps must be set before torch first runs a kernel, so a fresh process)."""
    env = isa_environment(isa)
    if all(os.environ.get(k) == env.get(k) for k in _KEYS):
        return
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, script, *argv], env)


def _captured_stdout(fn) -> str:
    """What ``fn`` writes to file descriptor 1 (the libraries' verbose output is C stdio)."""
    sys.stdout.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(1)
        os.dup2(tmp.fileno(), 1)
        try:
            fn()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors='replace')


def isa_in_use() -> Dict[str, str]:
    """``{'aten': ..., 'onednn': ..., 'onednn_kernels': ..., 'mkl': ...}``: the ISA each library
    runs in this process, from the libraries themselves."""
    x = torch.randn(64, 64)
    w, b = torch.randn(32, 64), torch.randn(32)
    img = torch.randn(1, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    dw = torch.randn(8, 1, 7, 7)

    def onednn():
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            torch.ops.mkldnn._linear_pointwise(x, w, b, 'gelu', [], 'none')
            torch.nn.functional.conv2d(img, dw, padding=3, groups=8)

    def mkl():
        with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
            x @ x
    dnn_log, mkl_log = _captured_stdout(onednn), _captured_stdout(mkl)
    isa = re.search(r'cpu,isa:([^\n]*)', dnn_log)
    kernels = re.findall(r'primitive,exec,cpu,(\w+),([^,]+),', dnn_log)
    arch = re.search(r'architecture (.*?)(?: enabled processors|,| with support)', mkl_log)
    return {'aten': torch.backends.cpu.get_cpu_capability(),
            'onednn': isa.group(1).strip() if isa else 'unknown (no verbose output)',
            'onednn_kernels': ', '.join(f'{op} {impl}' for op, impl in kernels) or 'unknown',
            'mkl': arch.group(1) if arch else 'unknown (no verbose output)'}


def cpu_flags() -> set:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where that is not readable)."""
    try:
        with open('/proc/cpuinfo') as f:
            return set(next(li for li in f if li.startswith('flags')).split(':')[1].split())
    except (OSError, StopIteration):
        return set()


def _mkl_names_no_isa(mkl: str) -> bool:
    """MKL's verbose line on a non-Intel CPU (AMD) says only "Intel(R) Architecture
    processors": it names no instruction set, whatever it runs."""
    return not re.search(r'AVX|SSE', mkl)


def describe(found: Dict[str, str]) -> str:
    """One line for the report."""
    return (f"ATen {found['aten']}; oneDNN {found['onednn']} ({found['onednn_kernels']}); "
            f"MKL {found['mkl']}")


def check_isa(isa: str, found: Dict[str, str]) -> None:
    """Raise unless every library runs ``isa`` (``native``: no check)."""
    if isa == 'native':
        return
    if isa == 'avx2':
        ok = {'ATen': found['aten'] == 'AVX2',
              'oneDNN': 'AVX2' in found['onednn'] and 'AVX-512' not in found['onednn']
              and 'avx512' not in found['onednn_kernels'],
              # MKL names no ISA on AMD CPUs: there, no AVX-512 in the CPU is the proof
              'MKL': ('AVX2' in found['mkl'] and 'AVX-512' not in found['mkl'])
              or (_mkl_names_no_isa(found['mkl']) and 'avx512f' not in cpu_flags())}
    else:
        ok = {'ATen': found['aten'] == 'AVX512', 'oneDNN': 'AVX-512' in found['onednn'],
              'MKL': 'AVX-512' in found['mkl']}
    wrong = [lib for lib, good in ok.items() if not good]
    if wrong:
        raise RuntimeError(f'--isa {isa} did not take effect for {", ".join(wrong)} '
                           f'({describe(found)}); does this CPU support it?')
