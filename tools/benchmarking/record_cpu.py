"""Record what this CPU and its libraries report, as a fixture for tests/fixtures/cpu_kinds/.

    python tools/benchmarking/record_cpu.py "AMD EPYC (Zen 4), AVX-512 with VNNI and BF16" \\
        > tests/fixtures/cpu_kinds/amd_zen4_avx512.yaml

The CPU-dependent logic (:mod:`convnext_backbone.cpu_isa`, ``benchmarking.isa``) is tested on
such records of every kind of CPU, on any machine. A record holds, natively and under the AVX2
caps of ``--isa avx2`` (each in a fresh process: the libraries read their caps once):
``/proc/cpuinfo``'s first processor, ``lscpu`` (without its vulnerability lines), ATen's
``get_cpu_capability()``, oneDNN's and MKL's verbose output of one small call
(``benchmarking.isa.isa_in_use``) and ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``; each
with where it came from. Nothing is interpreted here.
"""
import datetime
import json
import os
import platform
import subprocess
import sys

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarking.isa import ISA_ENV, isa_environment, isa_in_use  # noqa: E402


def _lscpu() -> str:
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ''
    return '\n'.join(li for li in out.splitlines() if not li.startswith('Vulnerability'))


def collect() -> dict:
    """This process's reports (the caps in its environment apply)."""
    found = isa_in_use()
    first = found['cpuinfo'].split('\n\n')[0]
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        bf16 = False
    return {'cpuinfo': first, 'lscpu': _lscpu(), 'aten': found['aten'],
            'onednn_verbose': found['onednn_verbose'], 'mkl_verbose': found['mkl_verbose'],
            'bf16_supported': bf16}


def _in_fresh_process(isa: str) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--collect'],
                          env=isa_environment(isa), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


class _Block(yaml.SafeDumper):
    """Multi-line text as YAML block scalars (readable, diffable)."""


_Block.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    'tag:yaml.org,2002:str', text, style='|' if '\n' in text else None))


def record(kind: str) -> dict:
    when = datetime.date.today().isoformat()
    where = (f'real: recorded {when} by tools/benchmarking/record_cpu.py on this machine '
             f'(torch {torch.__version__}, {platform.platform()})')
    sources = {
        'cpuinfo': f'{where}; /proc/cpuinfo, first processor',
        'lscpu': f'{where}; lscpu without its Vulnerability lines',
        'aten': f'{where}; torch.backends.cpu.get_cpu_capability()',
        'onednn_verbose': f'{where}; torch.backends.mkldnn.verbose around a linear+GELU and a '
                          'channels-last depthwise conv (benchmarking.isa.isa_in_use)',
        'mkl_verbose': f'{where}; torch.backends.mkl.verbose around a 64x64 matmul',
        'bf16_supported': f'{where}; torch.ops.mkldnn._is_mkldnn_bf16_supported()'}
    out = {'kind': kind, 'origin': where}
    for name, isa in (('native', 'native'), ('avx2_caps', 'avx2')):
        reports = _in_fresh_process(isa)
        if name != 'native':  # the CPU's own description does not change under caps
            reports = {k: v for k, v in reports.items() if k not in ('cpuinfo', 'lscpu')}
            out[name + '_env'] = ISA_ENV[isa]
        out[name] = {k: {'source': sources[k], 'value': v} for k, v in reports.items()}
    return out


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ['--collect']:
        return print(json.dumps(collect()))
    if len(argv) != 1:
        sys.exit('usage: python tools/benchmarking/record_cpu.py "KIND (e.g. AMD EPYC (Zen 4), '
                 'AVX-512 with VNNI and BF16)" > tests/fixtures/cpu_kinds/NAME.yaml')
    sys.stdout.write(f'# {argv[0]}: what the CPU and its libraries report '
                     '(tests/test_cpu_isa.py).\n')
    sys.stdout.write(yaml.dump(record(argv[0]), Dumper=_Block, sort_keys=False, width=1000))


if __name__ == '__main__':
    main()
