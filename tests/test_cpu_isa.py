"""convnext_backbone.cpu_isa reads what the CPU and its libraries report, on every kind of CPU:
Intel AVX2, AVX-512, AVX-512 VNNI, VNNI + BF16, AMX; AMD AVX2 (Zen 3) and AVX-512 (Zen 4).
Each kind's reports are recorded in tests/fixtures/cpu_kinds/ (natively and under the AVX2
caps), so every kind is checked on any machine; the expected readings below are written by hand
from each CPU's documented features. The last test checks this machine's live reports."""
import os

import pytest
from cpu_kinds import FIELDS, cases, load, names, reports

from convnext_backbone import cpu_isa
from convnext_backbone.cpu_isa import AVX2, AVX512

# kind: vendor, the CPU's ISA and extensions, MKL's ISA natively (None: it names none),
# how oneDNN runs bf16 natively.
EXPECTED = {
    'intel_avx2': ('Intel', AVX2, [], AVX2, ''),
    'intel_avx512': ('Intel', AVX512, [], AVX512, 'converted'),
    'intel_avx512_vnni': ('Intel', AVX512, ['VNNI'], AVX512, 'converted'),
    'intel_avx512_vnni_bf16': ('Intel', AVX512, ['VNNI', 'BF16'], AVX512, 'native'),
    'intel_amx': ('Intel', AVX512, ['VNNI', 'BF16', 'AMX'], AVX512, 'AMX'),
    'amd_zen3_avx2': ('AMD', AVX2, [], None, ''),
    'amd_zen4_avx512': ('AMD', AVX512, ['VNNI', 'BF16'], None, 'native'),
}
CASES = cases()


def _flags(values):
    return cpu_isa.parse_cpuinfo(values['cpuinfo']).flags


def test_every_kind_is_recorded_with_where_each_report_came_from():
    assert names() == sorted(EXPECTED)
    for name in names():
        data = load(name)
        assert {'native', 'avx2_caps'} <= set(data) and data['origin'], name
        for section in ('native', 'avx2_caps'):
            needed = FIELDS if section == 'native' else FIELDS[1:]
            for field in needed:
                entry = data[section][field]
                assert entry['source'].startswith(('real', 'documented')), (name, field)
                assert entry['value'] is not None, (name, field)
    # this machine's kind is recorded for real, every report of it
    real = load('amd_zen4_avx512')
    assert all(e['source'].startswith('real') for s in ('native', 'avx2_caps')
               for e in real[s].values())


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_cpu_described_from_its_flags(name):
    vendor, isa, extensions, _, _ = EXPECTED[name]
    info = cpu_isa.parse_cpuinfo(reports(name)['cpuinfo'])
    assert cpu_isa.vendor_name(info.vendor) == vendor
    assert cpu_isa.cpu_vector_isa(info.flags) == isa
    assert cpu_isa.cpu_extensions(info.flags) == extensions
    text = cpu_isa.describe_cpu(info)
    assert text.startswith(info.model) and f'({vendor}; {isa}' in text


def test_lscpu_reads_as_proc_cpuinfo():
    native = load('amd_zen4_avx512')['native']
    from_lscpu = cpu_isa.parse_cpuinfo(native['lscpu']['value'])
    assert from_lscpu == cpu_isa.parse_cpuinfo(native['cpuinfo']['value'])
    assert from_lscpu.vendor == 'AuthenticAMD' and 'avx512_vnni' in from_lscpu.flags


@pytest.mark.parametrize('name,section', CASES)
def test_each_library_report_read(name, section):
    """ATen, oneDNN and MKL say which ISA they run; MKL says none on AMD CPUs (None)."""
    values = reports(name, section)
    native_isa, mkl_native = EXPECTED[name][1], EXPECTED[name][3]
    want = {'native': native_isa, 'avx2_caps': AVX2, 'avx512_caps': AVX512}[section]
    mkl_want = None if mkl_native is None else want
    assert cpu_isa.aten_isa(values['aten']) == want
    assert cpu_isa.onednn_isa(values['onednn_verbose']) == want
    assert cpu_isa.mkl_isa(values['mkl_verbose']) == mkl_want
    kernels = {cpu_isa.kernel_isa(impl) for _, impl in
               cpu_isa.onednn_kernels(values['onednn_verbose'])} - {None}
    assert kernels == {want}
    if mkl_want is None:  # still a version line, naming no instruction set
        assert cpu_isa.mkl_processor(values['mkl_verbose']) == 'Intel(R) Architecture processors'


@pytest.mark.parametrize('name,section', CASES)
def test_fast_path_reading_agrees_with_what_onednn_reports(name, section):
    """The fast path decides from the CPU's flags and the caps (no verbose output in a model's
    forward); what it concludes is what oneDNN itself reports in the same state."""
    values = reports(name, section)
    below = cpu_isa.onednn_below_avx512(_flags(values), values['aten'], values['env'])
    assert below == (cpu_isa.onednn_isa(values['onednn_verbose']) != AVX512)
    assert below == (section == 'avx2_caps' or EXPECTED[name][1] == AVX2)
    # without readable flags (not Linux), ATen's capability stands in
    assert cpu_isa.onednn_below_avx512(frozenset(), values['aten'], values['env']) == below


@pytest.mark.parametrize('name,section', CASES)
def test_bf16_support_agrees_with_torch(name, section):
    values = reports(name, section)
    support = cpu_isa.bf16_support(_flags(values), values['env'])
    assert bool(support) == values['bf16_supported']
    assert support == (EXPECTED[name][4] if section == 'native'
                       else 'converted' if section == 'avx512_caps' else '')
    if not support:
        why = cpu_isa.bf16_absent_because(_flags(values), values['env'])
        assert ('ONEDNN_MAX_CPU_ISA=AVX2 caps oneDNN' in why) == (section == 'avx2_caps'
                                                                  and EXPECTED[name][1] == AVX512)


@pytest.mark.parametrize('env,cap', [
    ({}, None), ({'ONEDNN_MAX_CPU_ISA': 'ALL'}, None), ({'ONEDNN_MAX_CPU_ISA': 'DEFAULT'}, None),
    ({'ONEDNN_MAX_CPU_ISA': 'AVX512'}, None),  # not a oneDNN name: oneDNN ignores it
    ({'ONEDNN_MAX_CPU_ISA': 'AVX2'}, 'avx2'), ({'ONEDNN_MAX_CPU_ISA': 'avx2_vnni'}, 'avx2_vnni'),
    ({'ONEDNN_MAX_CPU_ISA': 'AVX512_CORE_AMX'}, 'avx512_core_amx'),
    ({'DNNL_MAX_CPU_ISA': 'SSE41'}, 'sse41'),
    ({'ONEDNN_MAX_CPU_ISA': 'AVX2', 'DNNL_MAX_CPU_ISA': 'SSE41'}, 'avx2')])
def test_onednn_cap_read_as_onednn_reads_it(env, cap):
    assert cpu_isa.onednn_cap(env) == cap


@pytest.mark.parametrize('cap,below,bf16', [
    ('AVX512_CORE', False, 'converted'), ('AVX512_CORE_BF16', False, 'native'),
    ('AVX512_CORE_AMX', False, 'AMX'), ('AVX2_VNNI', True, ''), ('ALL', False, 'AMX')])
def test_caps_within_an_amx_cpu(cap, below, bf16):
    """Each cap takes away exactly the features oneDNN's cap takes away."""
    values = reports('intel_amx')
    env = {'ONEDNN_MAX_CPU_ISA': cap}
    assert cpu_isa.onednn_below_avx512(_flags(values), 'AVX512', env) == below
    assert cpu_isa.bf16_support(_flags(values), env) == bf16


def test_onednn_isa_from_its_kernels_when_the_header_was_printed_earlier():
    """oneDNN prints its ``isa:`` header once per process: later output names kernels only."""
    for name, section in CASES:
        verbose = reports(name, section)['onednn_verbose']
        without = '\n'.join(li for li in verbose.splitlines() if ',info,' not in li)
        assert cpu_isa.onednn_isa_line(without) is None
        assert cpu_isa.onednn_isa(without) == cpu_isa.onednn_isa(verbose), (name, section)
    assert cpu_isa.onednn_isa('') is None
    assert cpu_isa.kernel_isa('jit:uni') is None and cpu_isa.kernel_isa('ref:any') is None
    assert cpu_isa.kernel_isa('brg_matmul:avx10_1_512_amx') == AVX512


def test_what_cannot_be_told_is_none():
    nothing = cpu_isa.CpuInfo()
    assert cpu_isa.cpu_vector_isa(nothing.flags) is None
    assert 'not readable' in cpu_isa.describe_cpu(nothing)
    assert cpu_isa.bf16_support(nothing.flags, {}) is None
    assert cpu_isa.mkl_isa('') is None and cpu_isa.mkl_processor('') is None
    assert cpu_isa.aten_isa('ZVECTOR') is None and cpu_isa.aten_isa('DEFAULT') == 'below AVX2'
    assert cpu_isa.read_cpuinfo('/nonexistent/cpuinfo') == nothing


def test_this_machine_agrees_with_its_libraries():
    """What only the real CPU can show: the fast path's reading of this machine's flags and caps
    equals what oneDNN reports running here, and the bf16 reading equals torch's."""
    from convnext_backbone.engine import cpu_supports_bf16
    from convnext_backbone.models import fast_path

    from benchmarking.isa import isa_in_use
    info = cpu_isa.read_cpuinfo()
    if not info.flags:
        pytest.skip('the CPU\'s flags cannot be read here (no /proc/cpuinfo): nothing to compare')
    found = isa_in_use()
    onednn = cpu_isa.onednn_isa(found['onednn_verbose'])
    if onednn is None:
        pytest.skip('oneDNN printed no verbose output here (a torch build without it)')
    assert fast_path.onednn_isa_below_avx512() == (onednn != AVX512)
    assert bool(cpu_isa.bf16_support(info.flags, os.environ)) == cpu_supports_bf16()
