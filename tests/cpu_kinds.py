"""Recorded reports of every kind of CPU (``tests/fixtures/cpu_kinds/*.yaml``), for the tests of
the CPU-dependent logic: what ``/proc/cpuinfo`` (and ``lscpu``), ATen's capability, oneDNN's and
MKL's verbose output and torch's bf16 check print natively (``native``) and under the caps of
``--isa avx2`` (``avx2_caps``; some kinds also ``avx512_caps``). Each value says where it came
from (``source``: recorded for real, or the library's documented format). A new kind:
``python tools/benchmarking/record_cpu.py "KIND" > tests/fixtures/cpu_kinds/NAME.yaml``.
"""
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import yaml

FIXTURES = Path(__file__).resolve().parent / 'fixtures' / 'cpu_kinds'
FIELDS = ('cpuinfo', 'aten', 'onednn_verbose', 'mkl_verbose', 'bf16_supported')


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    with open(FIXTURES / f'{name}.yaml') as f:
        return yaml.safe_load(f)


def names() -> List[str]:
    return sorted(p.stem for p in FIXTURES.glob('*.yaml'))


def sections(name: str) -> List[str]:
    """``native``, ``avx2_caps`` and the other recorded sections of a kind."""
    return [key for key, value in load(name).items()
            if isinstance(value, dict) and 'aten' in value]


def cases() -> List[tuple]:
    """(kind, section) for every recorded section of every kind."""
    return [(name, section) for name in names() for section in sections(name)]


def reports(name: str, section: str = 'native') -> Dict[str, object]:
    """The values of one section, with the CPU's description (recorded natively: caps do not
    change it) and ``env``, the caps the section ran under (``{}`` natively)."""
    data = load(name)
    values = {key: entry['value'] for key, entry in data[section].items()}
    values.setdefault('cpuinfo', data['native']['cpuinfo']['value'])
    values['env'] = dict(data.get(f'{section}_env', {}))
    return values
