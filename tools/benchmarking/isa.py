"""The instruction set a benchmark runs on: choosing it, and reading back what actually runs.

ATen's vectorised kernels, oneDNN and MKL each pick their code path for the CPU once, when they
first run, and each can be capped by an environment variable. ``--isa avx2`` on an AVX-512 CPU
therefore emulates an AVX2-only CPU (for all three libraries) by running the benchmark again in
a fresh process with those variables set. Nothing is assumed: :func:`isa_in_use` asks each
library what it runs (ATen directly, oneDNN and MKL through their verbose output of one small
call) and :func:`isa_verdicts` reads those reports (pure functions of their text:
:mod:`convnext_backbone.cpu_isa`, tested on recorded reports of Intel and AMD CPUs):
:func:`check_isa` refuses to report figures under a label a library contradicts, and says
"cannot tell" where a library does not say (MKL names no instruction set on AMD CPUs).
"""
import os
import sys
import tempfile
from typing import Dict, List, Optional

import torch

from convnext_backbone import cpu_isa

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
    """``{'aten': ..., 'onednn_verbose': ..., 'mkl_verbose': ..., 'cpuinfo': ...}``: what each
    library says it runs in this process (ATen's capability, oneDNN's and MKL's verbose output
    of one small call) and the CPU's own description, as text for :func:`isa_verdicts`."""
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
    try:
        with open('/proc/cpuinfo') as f:
            cpuinfo = f.read()
    except OSError:
        cpuinfo = ''
    return {'aten': torch.backends.cpu.get_cpu_capability(),
            'onednn_verbose': _captured_stdout(onednn), 'mkl_verbose': _captured_stdout(mkl),
            'cpuinfo': cpuinfo}


def cpu_flags() -> set:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where that is not readable)."""
    return set(cpu_isa.read_cpuinfo().flags)


CANNOT_TELL = None
_WANT = {'avx2': cpu_isa.AVX2, 'avx512': cpu_isa.AVX512}


def isa_verdicts(isa: str, found: Dict[str, str]) -> Dict[str, Optional[bool]]:
    """Per library (ATen, oneDNN, MKL): does it run ``isa`` (``avx2`` / ``avx512``)? ``True``,
    ``False``, or ``None`` where its report does not say (MKL on a non-Intel CPU, a library
    without verbose output). A pure function of :func:`isa_in_use`'s reports."""
    want = _WANT[isa]
    onednn_kernels = {cpu_isa.kernel_isa(impl)
                      for _, impl in cpu_isa.onednn_kernels(found['onednn_verbose'])} - {None}
    seen = {'ATen': cpu_isa.aten_isa(found['aten']),
            'oneDNN': cpu_isa.onednn_isa(found['onednn_verbose']),
            'MKL': cpu_isa.mkl_isa(found['mkl_verbose'])}
    verdicts = {lib: (CANNOT_TELL if got is None else got == want) for lib, got in seen.items()}
    if verdicts['oneDNN'] and onednn_kernels - {want}:  # a kernel of another ISA ran
        verdicts['oneDNN'] = False
    return verdicts


def describe(found: Dict[str, str], isa: str = 'native') -> str:
    """One line for the report: what each library says it runs, and for a capped ``isa``
    which library's report cannot confirm it."""
    dnn = found['onednn_verbose']
    line = cpu_isa.onednn_isa_line(dnn) or 'ISA line printed earlier in this process'
    kernels = ', '.join(f'{op} {impl}' for op, impl in cpu_isa.onednn_kernels(dnn)) or 'none seen'
    mkl = cpu_isa.mkl_processor(found['mkl_verbose'])
    if mkl is None:
        mkl = 'no verbose output (cannot tell what it runs)'
    elif cpu_isa.mkl_isa(found['mkl_verbose']) is None:
        vendor = cpu_isa.vendor_name(cpu_isa.parse_cpuinfo(found.get('cpuinfo', '')).vendor)
        mkl += f' (names no instruction set on this {vendor} CPU'
        if isa != 'native':
            cap = ISA_ENV[isa]['MKL_ENABLE_INSTRUCTIONS']
            mkl += f': cannot tell whether MKL_ENABLE_INSTRUCTIONS={cap} took effect'
        mkl += ')'
    return f"ATen {found['aten']}; oneDNN {line} ({kernels}); MKL {mkl}"


def check_isa(isa: str, found: Dict[str, str]) -> Dict[str, Optional[bool]]:
    """Raise if a library's report contradicts ``isa`` (``native``: no check); returns the
    verdicts, where ``None`` is "cannot tell" (the report says so, the run goes on)."""
    if isa == 'native':
        return {}
    verdicts = isa_verdicts(isa, found)
    wrong = [lib for lib, ok in verdicts.items() if ok is False]
    if wrong:
        raise RuntimeError(f'--isa {isa} did not take effect for {", ".join(wrong)} '
                           f'({describe(found, isa)}); does this CPU support it?')
    return verdicts
