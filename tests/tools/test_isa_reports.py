"""``--isa`` of tools/benchmark_backbone.py judged on the recorded reports of every kind of CPU
(tests/fixtures/cpu_kinds/): the caps confirmed where the libraries say so, "cannot tell" where
a library names no ISA (MKL on AMD CPUs; the run goes on and the report says so), refused where a
library contradicts the label (AVX-512 asked of an AVX2 CPU)."""
import pytest
import torch
from cpu_kinds import cases, reports
from doc_commands import doc_argv

from benchmarking.isa import check_isa, describe, isa_verdicts
from conftest import REPO, run_tool

AMD = ('amd_zen3_avx2', 'amd_zen4_avx512')
AVX2_ONLY = ('intel_avx2', 'amd_zen3_avx2')


def _found(name, section):
    values = reports(name, section)
    return {k: values[k] for k in ('aten', 'onednn_verbose', 'mkl_verbose', 'cpuinfo')}


@pytest.mark.parametrize('name,section', [c for c in cases() if c[1] != 'native'])
def test_caps_confirmed_or_cannot_tell(name, section):
    """Under the caps of ``--isa avx2`` (and ``avx512``): ATen and oneDNN confirm; MKL confirms on
    Intel CPUs and cannot tell on AMD, which the report line says (no failure)."""
    isa = section.split('_')[0]
    found = _found(name, section)
    verdicts = check_isa(isa, found)
    assert verdicts == {'ATen': True, 'oneDNN': True, 'MKL': None if name in AMD else True}
    line = describe(found, isa)
    cannot = f'cannot tell whether MKL_ENABLE_INSTRUCTIONS={isa.upper()} took effect'
    assert (cannot in line) == (name in AMD)
    if name in AMD:
        assert 'names no instruction set on this AMD CPU' in line


@pytest.mark.parametrize('name', AVX2_ONLY)
def test_avx512_refused_on_an_avx2_cpu(name):
    found = _found(name, 'native')
    verdicts = isa_verdicts('avx512', found)
    assert verdicts['ATen'] is False and verdicts['oneDNN'] is False
    with pytest.raises(RuntimeError, match=r'--isa avx512 did not take effect for ATen, oneDNN'):
        check_isa('avx512', found)


def test_a_kernel_of_another_isa_is_a_contradiction():
    """oneDNN's header says AVX2 but an AVX-512 kernel ran: the cap did not hold."""
    found = _found('amd_zen4_avx512', 'avx2_caps')
    found['onednn_verbose'] += ('onednn_verbose,v1,primitive,exec,cpu,convolution,'
                                'brdgmm_dw:avx512_core,forward_training,src:f32,,,1\n')
    assert isa_verdicts('avx2', found)['oneDNN'] is False


def test_native_checks_nothing_and_names_what_runs():
    found = _found('amd_zen4_avx512', 'native')
    assert check_isa('native', found) == {}
    line = describe(found)
    assert line.startswith('ATen AVX512; oneDNN Intel AVX-512 with Intel DL Boost and bfloat16 '
                           'support (inner_product brg_matmul:avx512_core')
    assert line.endswith('MKL Intel(R) Architecture processors (names no instruction set on this '
                         'AMD CPU)')
    # a torch build whose MKL prints nothing: said, and not a contradiction
    found['mkl_verbose'] = ''
    assert describe(found, 'avx2').endswith('MKL no verbose output (cannot tell what it runs)')
    assert isa_verdicts('avx512', found)['MKL'] is None


def test_record_cpu_collects_what_the_readings_read(tmp_path):
    """tools/benchmarking/record_cpu.py (how a kind's fixture is made): what it collects here
    reads as this machine's live state, and its YAML loads back as it was written."""
    import yaml

    from convnext_backbone import cpu_isa

    from benchmarking import record_cpu
    collected = record_cpu.collect()
    assert cpu_isa.parse_cpuinfo(collected['cpuinfo']) == cpu_isa.read_cpuinfo()
    assert collected['aten'] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(collected['bf16_supported'], bool)
    text = yaml.dump({'native': {k: {'source': 'real', 'value': v} for k, v in collected.items()}},
                     Dumper=record_cpu._Block, sort_keys=False, width=1000)
    loaded = yaml.safe_load(text)['native']
    assert {k: v['value'] for k, v in loaded.items()} == collected
    with pytest.raises(SystemExit, match='usage: python tools/benchmarking/record_cpu.py'):
        record_cpu.main([])


# docs/benchmarks.md: how another kind of CPU is recorded
RECORD = 'python tools/benchmarking/record_cpu.py "KIND"'


@pytest.mark.slow  # the tool, and the fresh processes it records in
def test_record_cpu_as_the_docs_write_it_records_this_machine(tmp_path):
    """The docs' command, as written: a fixture in the format of tests/fixtures/cpu_kinds/, whose
    native reports read as this machine and whose AVX2-capped ones as the caps."""
    import yaml

    from convnext_backbone import cpu_isa
    python, *command = doc_argv(RECORD, KIND='this machine')
    proc = run_tool(*command, cwd=REPO)
    recorded = yaml.safe_load(proc.stdout)
    assert recorded['kind'] == 'this machine'
    native = {k: v['value'] for k, v in recorded['native'].items()}
    assert cpu_isa.parse_cpuinfo(native['cpuinfo']) == cpu_isa.read_cpuinfo()
    assert native['aten'] == torch.backends.cpu.get_cpu_capability()
    if 'avx2' in cpu_isa.read_cpuinfo().flags:
        assert recorded['avx2_caps']['aten']['value'] == 'AVX2'
