"""Which computation a block runs is decided in one place, ``fast_path.block_path``: every case
of the decision table (device, dtype, memory format, gradients, autocast, tracers, switches), the
GEMM library chosen by the instruction set, and that choice on every kind of CPU (Intel and AMD,
AVX2 and AVX-512, natively and under the oneDNN cap: tests/fixtures/cpu_kinds/)."""
import cpu_kinds
import pytest
import torch
from block_cases import make_block, make_input

from convnext_backbone import cpu_isa
from convnext_backbone.models import fast_path
from convnext_backbone.models.fast_path import block_path
from convnext_backbone.models.switches import SWITCHES

from checkpoint_layouts import assert_close_scaled

ONEDNN = SWITCHES.onednn


# ------------------------------------------------------------------ the decision, in one place
def _decide(case, monkeypatch):
    """(block, input, context) for one row of the decision table."""
    block, _ = make_block(dilation=2 if case.startswith('dilated') else 1)
    x = make_input(2, 16, 3, 3, channels_last=case != 'channels-first')
    ctx = torch.no_grad()
    if case == 'fast-path-off':
        block.fast_path = False
    elif case in ('training', 'training-no-onednn', 'dilated-training'):
        x.requires_grad_()
        ctx = torch.enable_grad()
        if case == 'training-no-onednn':
            monkeypatch.setattr(SWITCHES, 'onednn', False)
    elif case == 'frozen':  # grad mode on, but nothing requires a gradient
        block.requires_grad_(False)
        ctx = torch.enable_grad()
    elif case == 'no-onednn':
        monkeypatch.setattr(SWITCHES, 'onednn', False)
    elif case == 'bf16':
        block, x = block.to(torch.bfloat16), x.bfloat16()
    elif case == 'autocast':
        x.requires_grad_()
        ctx = torch.autocast('cpu', dtype=torch.bfloat16)
    elif case == 'chunked':
        monkeypatch.setattr(SWITCHES, 'chunk_elements', 1)
    elif case == 'avx2-inference':
        monkeypatch.setattr(fast_path, 'onednn_isa_below_avx512', lambda: True)
    elif case == 'avx2-training':
        monkeypatch.setattr(fast_path, 'onednn_isa_below_avx512', lambda: True)
        x.requires_grad_()
        ctx = torch.enable_grad()
    return block, x, ctx


@pytest.mark.skipif(not ONEDNN, reason='torch built without oneDNN')
@pytest.mark.parametrize('case,name,dw_grad', [
    ('fast-path-off', 'plain', False),
    ('inference', 'onednn_inference', False),
    ('chunked', 'onednn_inference_chunked', False),  # on AVX-512 (forced below)
    ('channels-first', 'aten', False),
    ('no-onednn', 'aten', False),
    ('bf16', 'aten', False),
    ('autocast', 'aten', False),
    ('frozen', 'onednn_inference', False),
    ('training', 'cpu_training', True),
    ('training-no-onednn', 'cpu_training', True),
    ('avx2-inference', 'mkl_inference', False),  # oneDNN below AVX-512: aten's (MKL) GEMMs
    ('avx2-training', 'cpu_training', True),
    # output_stride < 32: dilated depthwise convolutions take the same paths (the depthwise
    # weight gradient covers dilation)
    ('dilated-inference', 'onednn_inference', False),
    ('dilated-training', 'cpu_training', True),
])
def test_block_path_decides_every_case(case, name, dw_grad, monkeypatch):
    """One function names the path for each state; the block runs exactly that path (and agrees
    with the official computation, checked for each path above)."""
    monkeypatch.setattr(fast_path, 'onednn_isa_below_avx512', lambda: False)  # AVX-512
    block, x, ctx = _decide(case, monkeypatch)
    seen = []
    block.register_forward_pre_hook(lambda m, args: seen.append(block_path(m, args[0])))
    with ctx:
        path = block_path(block, x)
        block(x)
    assert path.name == name and path.name in fast_path.PATH_NAMES
    assert path.depthwise_weight_grad == dw_grad
    assert path.onednn_gemms == (case in ('training', 'dilated-training'))
    assert seen == [path]


@pytest.mark.parametrize('below_avx512,names', [
    (True, ('mkl_inference', 'mkl_inference_chunked', False)),
    (False, ('onednn_inference', 'onednn_inference_chunked', True))])
def test_gemms_chosen_by_isa(below_avx512, names, monkeypatch):
    """By default the MLP's GEMMs are aten's (MKL) where oneDNN runs below AVX-512 (AVX2 CPUs)
    and oneDNN's fused matmuls with AVX-512, chunked or not, in inference and in training;
    ``SWITCHES.mkl_gemms`` overrides."""
    monkeypatch.setattr(fast_path, 'onednn_isa_below_avx512', lambda: below_avx512)
    block, plain = make_block()
    x = make_input(2, 16, 9, 9)
    with torch.no_grad():
        assert block_path(block.eval(), x).name == names[0]
        monkeypatch.setattr(SWITCHES, 'chunk_elements', 1)
        assert block_path(block, x).name == names[1]
        assert_close_scaled(block(x), plain.eval()(x))
        for forced in (True, False):
            monkeypatch.setattr(SWITCHES, 'mkl_gemms', forced)
            assert block_path(block, x).name == ('mkl_inference_chunked' if forced
                                                 else 'onednn_inference_chunked')
    monkeypatch.setattr(SWITCHES, 'mkl_gemms', None)
    assert block_path(block, x.detach().requires_grad_()).onednn_gemms == (names[2] and ONEDNN)


@pytest.mark.skipif(not ONEDNN, reason='torch built without oneDNN')
@pytest.mark.parametrize('name,section', cpu_kinds.cases())
def test_gemm_library_chosen_on_every_kind_of_cpu(name, section, monkeypatch):
    """What the fast path reads of the CPU (its flags, ATen's capability, the oneDNN cap in the
    environment), given each kind's recorded reports: oneDNN's fused matmuls where oneDNN runs
    AVX-512 (its own report in the same record says so), aten's (MKL) GEMMs below."""
    values = cpu_kinds.reports(name, section)
    for key in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA'):
        monkeypatch.delenv(key, raising=False)
    for key, value in values['env'].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cpu_isa, 'read_cpuinfo',
                        lambda: cpu_isa.parse_cpuinfo(values['cpuinfo']))
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: values['aten'])
    fast_path.onednn_isa_below_avx512.cache_clear()
    try:
        onednn_avx512 = cpu_isa.onednn_isa(values['onednn_verbose']) == cpu_isa.AVX512
        assert fast_path.onednn_isa_below_avx512() == (not onednn_avx512)
        block, _ = make_block()
        with torch.no_grad():
            chosen = block_path(block.eval(), make_input(2, 16, 9, 9)).name
        assert chosen == ('onednn_inference' if onednn_avx512 else 'mkl_inference')
    finally:
        monkeypatch.undo()
        fast_path.onednn_isa_below_avx512.cache_clear()
