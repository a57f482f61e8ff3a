"""Mixed precision on a machine without a GPU: ``CPUAutocastOptimWrapper`` (bf16 autocast on
the CPU) and what tools/train.py does with an AMP config there (``--amp-dtype bfloat16``: bf16
autocast where the CPU supports it; otherwise fp32 with a notice that says so)."""
import copy
import math

import cpu_kinds
import pytest
import torch
from doc_commands import doc_argv
from mmengine.config import Config
from mmengine.logging import MMLogger

from convnext_backbone import cpu_isa
from convnext_backbone.cli import config as cli_config
from convnext_backbone.engine import (
    CPUAutocastError,
    CPUAutocastOptimWrapper,
    cpu_autocast,
    cpu_supports_bf16,
)
from convnext_backbone.models import ConvNeXt

from checkpoint_layouts import randomise_
from conftest import REPO, run_tool, toy_det_options, toy_seg_options

needs_bf16 = pytest.mark.skipif(not cpu_supports_bf16(), reason='CPU without bf16 support')
TINY = dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32], grn=True)


def _model():
    torch.manual_seed(0)
    model = ConvNeXt(arch=TINY, layer_scale_init_value=1.0)
    randomise_(model, seed=1)
    return model


def _step(model, wrapper, x):
    """One training step as mmengine's ``train_step`` runs it; returns the loss, the dtypes the
    stem convolution produced and the autocast state inside the step."""
    seen = []
    hook = model.downsample_layers[0][0].register_forward_hook(
        lambda m, a, out: seen.append((out.dtype, torch.is_autocast_enabled('cpu'))))
    with wrapper.optim_context(model):
        outs = model(x)
        gen = torch.Generator().manual_seed(2)
        loss = sum((o.float() * torch.randn(o.shape, generator=gen)).mean() for o in outs)
    wrapper.update_params(loss)
    hook.remove()
    return float(loss), seen


@needs_bf16
def test_training_step_in_bf16_close_to_fp32():
    """The forward runs under bf16 autocast; parameters and their updates stay fp32; the loss
    and the SGD update agree with an fp32 step to bf16's tolerance (docs/mixed_precision.md)."""
    from mmengine.optim import OptimWrapper
    x = torch.randn(2, 3, 67, 45, generator=torch.Generator().manual_seed(3))
    results = []
    for wrapper_type in (OptimWrapper, CPUAutocastOptimWrapper):
        model = _model().train()
        before = copy.deepcopy(model.state_dict())
        wrapper = wrapper_type(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        loss, seen = _step(model, wrapper, x)
        update = {k: v - before[k] for k, v in model.state_dict().items()}
        assert all(u.dtype == torch.float32 for u in update.values())
        results.append((loss, seen, update))
    (ref_loss, ref_seen, ref_update), (loss, seen, update) = results
    assert ref_seen == [(torch.float32, False)] and seen == [(torch.bfloat16, True)]
    assert abs(loss - ref_loss) < 0.08 * abs(ref_loss)
    for name, ref in ref_update.items():
        assert torch.isfinite(update[name]).all()
        assert float((update[name] - ref).norm()) <= 0.08 * float(ref.norm()) + 1e-12, name


@needs_bf16
def test_built_from_a_config_in_a_host_scope():
    """A config names it with our scope prefix; mmdet's registry finds it (as the Runner
    builds optim wrappers); resuming from an AmpOptimWrapper checkpoint drops its loss scaler."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    model = _model()
    with DefaultScope.overwrite_default_scope('mmdet'):
        wrapper = build_optim_wrapper(model, dict(
            type='convnext_backbone.CPUAutocastOptimWrapper', dtype='bfloat16',
            optimizer=dict(type='AdamW', lr=1e-3)))
    assert type(wrapper) is CPUAutocastOptimWrapper and wrapper.cast_dtype == torch.bfloat16
    state = wrapper.state_dict()
    wrapper.load_state_dict(dict(state, loss_scaler={'scale': 1024.}))
    assert wrapper.state_dict() == state


@pytest.mark.parametrize('dtype,match', [('float16', "dtype 'float16' is not supported"),
                                         (torch.float32, 'is not supported')])
def test_refuses_other_dtypes(dtype, match):
    with pytest.raises(CPUAutocastError, match=match):
        CPUAutocastOptimWrapper(optimizer=torch.optim.SGD(_model().parameters(), lr=0.1),
                                dtype=dtype)


@pytest.mark.parametrize('name,section', cpu_kinds.cases())
def test_bf16_where_onednn_has_it_on_every_kind_of_cpu(name, section, monkeypatch):
    """Given each kind's recorded reports (torch's bf16 check, the CPU's flags, the oneDNN cap):
    the wrapper is built where oneDNN has bf16 kernels; elsewhere one error says why (the cap
    to unset, or the CPU's ISA)."""
    values = cpu_kinds.reports(name, section)
    for key in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA'):
        monkeypatch.delenv(key, raising=False)
    for key, value in values['env'].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cpu_autocast, 'cpu_supports_bf16', lambda: values['bf16_supported'])
    monkeypatch.setattr(cpu_isa, 'read_cpuinfo', lambda: cpu_isa.parse_cpuinfo(values['cpuinfo']))

    def build():
        return CPUAutocastOptimWrapper(optimizer=torch.optim.SGD(_model().parameters(), lr=0.1))
    if values['bf16_supported']:
        assert build().cast_dtype == torch.bfloat16
        return
    capped_avx512 = section == 'avx2_caps' and 'avx512f' in cpu_isa.parse_cpuinfo(
        values['cpuinfo']).flags
    why = ('ONEDNN_MAX_CPU_ISA=AVX2 caps oneDNN below its bf16 kernels; unset it' if capped_avx512
           else 'this CPU has AVX2 without AVX-NE-CONVERT')
    with pytest.raises(CPUAutocastError, match=f'no bf16 support in oneDNN \\(.*{why}'):
        build()


@needs_bf16
def test_refuses_a_model_not_on_the_cpu():
    model = _model()
    wrapper = CPUAutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(CPUAutocastError, match='model is on meta; use AmpOptimWrapper'):
        with wrapper.optim_context(model.to('meta')):
            pass


@needs_bf16
def test_an_op_without_bf16_cpu_kernel_is_a_clear_error():
    """mmcv's CPU nms takes fp32 only: called on bf16 tensors outside what the wrapper keeps in
    fp32 (an mmcv.ops module, a head's outputs), that is one error naming the op's failure and
    the fix, not mmcv's bare message."""
    nms = pytest.importorskip('mmcv.ops').nms
    model = _model()
    wrapper = CPUAutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]])
    with pytest.raises(CPUAutocastError, match=r'no bf16 CPU kernel \(.*BFloat16.*\), outside '
                       r'the mmcv ops'):
        with wrapper.optim_context(model):
            scores = model.downsample_layers[0][0](torch.ones(2, 3, 4, 4)).flatten(1)[:, 0]
            assert scores.dtype == torch.bfloat16
            nms(boxes.to(scores.dtype), scores, 0.5)


@needs_bf16
@pytest.mark.slow  # a detector built and two training steps: about 6 s, 20 s under load
def test_a_two_stage_detector_trains_in_bf16_with_its_mmcv_ops_in_fp32(toy_root):
    """The toy Mask R-CNN (mmdet's model, the toy's own training pipeline) takes a training
    step under the wrapper: the backbone and the RPN compute in bf16, mmcv's RoIAlign in fp32
    (the RPN's outputs reach its nms in fp32: bf16 would fail there, as the test above shows),
    and the losses are those of the fp32 step to
    bf16's rounding. Outside the step nothing of it is left on the model."""
    import importlib

    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    cfg = cli_config.load_config(str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py'),
                                 {'train_dataloader.dataset.data_root': f'{toy_root}/coco/'})
    init_default_scope('mmdet')
    registry = importlib.import_module('mmdet.registry')
    torch.manual_seed(0)
    model = registry.MODELS.build(cfg.model)
    model.init_weights()
    dataset = registry.DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(2)])
    seen = {}

    def record(key, value):  # a hook that returns None leaves the call as it is
        seen.setdefault(key, value)

    # registered before the wrapper's own hooks: they see what the caller gives and what the
    # op computes, before the wrapper's casts
    roi_align = model.roi_head.bbox_roi_extractor.roi_layers[0]
    hooks = [roi_align.register_forward_pre_hook(lambda m, a: record('roi_in', a[0].dtype)),
             roi_align.register_forward_hook(lambda m, a, out: record('roi_out', out.dtype)),
             model.backbone.downsample_layers[0][0].register_forward_hook(
                 lambda m, a, out: record('stem', out.dtype)),
             model.rpn_head.register_forward_hook(
                 lambda m, a, out: record('rpn', out[0][0].dtype))]
    losses = {}
    for name, wrapper in (('fp32', OptimWrapper), ('bf16', CPUAutocastOptimWrapper)):
        torch.manual_seed(1)  # the same RoI sampling for both
        optimizer = torch.optim.SGD(model.parameters(), lr=0.)
        losses[name] = float(model.train_step(batch, wrapper(optimizer=optimizer))['loss'])
        if name == 'fp32':
            seen.clear()
    for hook in hooks:
        hook.remove()
    assert seen == {'stem': torch.bfloat16, 'rpn': torch.bfloat16,  # computed in bf16
                    'roi_in': torch.bfloat16, 'roi_out': torch.float32}  # RoIAlign: in fp32
    assert math.isfinite(losses['bf16'])
    assert abs(losses['bf16'] - losses['fp32']) <= 0.05 * abs(losses['fp32']), losses
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())


# ------------------------------------------------------------------ tools/train.py's choice
def _amp_cfg(dtype=None):
    wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic',
                   optimizer=dict(type='AdamW', lr=1e-3))
    if dtype:
        wrapper['dtype'] = dtype
    return Config(dict(optim_wrapper=wrapper))


@pytest.mark.parametrize('dtype,supported,wrapper,notice', [
    ('bfloat16', True, 'convnext_backbone.CPUAutocastOptimWrapper', 'bf16 autocast on the CPU'),
    ('bfloat16', False, 'OptimWrapper', 'AMP (bfloat16) config runs in fp32 with OptimWrapper '
                                        '(this CPU has no bf16 support'),
    ('float16', True, 'OptimWrapper', 'AMP (float16) config runs in fp32 with OptimWrapper (bf16 '
                                      'autocast on this CPU: tools/train.py --amp-dtype bfloat16'),
    (None, True, 'OptimWrapper', 'AMP (float16) config runs in fp32'),
])
def test_amp_config_without_gpu(dtype, supported, wrapper, notice, monkeypatch, capsys):
    """What an AMP config becomes on a machine without CUDA, and the notice that says so."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(cli_config, 'cpu_supports_bf16', lambda: supported)
    MMLogger.get_instance('cpu_autocast_test')
    cfg = _amp_cfg()
    cli_config.enable_amp(cfg, dtype)
    cli_config.cpu_autocast_without_gpu(cfg)
    cli_config.fall_back_to_fp32_without_gpu(cfg)
    assert cfg.optim_wrapper.type == wrapper
    assert 'loss_scale' not in cfg.optim_wrapper
    assert ('dtype' in cfg.optim_wrapper) == (wrapper != 'OptimWrapper')
    out = capsys.readouterr()
    assert notice in out.out + out.err


# docs/mixed_precision.md: both toys trained in bf16 (the detector with its mmcv ops in fp32)
TRAIN_BF16_SEG = ('python tools/train.py configs/toy/upernet_convnext_toy_ade20k.py '
                  '--amp-dtype bfloat16')
TRAIN_BF16_DET = ('python tools/train.py configs/toy/maskrcnn_convnext_toy_coco.py '
                  '--amp-dtype bfloat16')


@needs_bf16
@pytest.mark.slow
@pytest.mark.parametrize('toy', ['maskrcnn', 'upernet'])
def test_train_tool_amp_dtype_bfloat16_trains_the_toy_in_bf16(toy, toy_root, tmp_path):
    """``tools/train.py --amp-dtype bfloat16`` on the toy UperNet and the toy Mask R-CNN, the
    docs' commands with a work dir and a two-iteration run on the toy set: the notice, the
    wrapper in the run's saved config, finite losses, a checkpoint."""
    if toy == 'upernet':  # docs/mixed_precision.md, as written
        python, *command = doc_argv(TRAIN_BF16_SEG)
        options = [*toy_seg_options(toy_root / 'ade' / 'ADEChallengeData2016'),
                   'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                   'default_hooks.checkpoint.interval=2']
        done, checkpoint = 'Iter(train) [2/2]', 'iter_2.pth'
    else:  # one epoch of two iterations, no validation
        python, *command = doc_argv(TRAIN_BF16_DET)
        options = [*toy_det_options(toy_root / 'coco'), 'train_cfg.max_epochs=1',
                   'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1']
        done, checkpoint = 'Epoch(train) [1][2/2]', 'epoch_1.pth'
    proc = run_tool(*command, '--work-dir', tmp_path, '--cfg-options', *options,
                    'default_hooks.logger.interval=1')
    out = proc.stdout + proc.stderr
    assert 'runs with bf16 autocast on the CPU' in out
    saved = Config.fromfile(next(tmp_path.glob('*/vis_data/config.py')))
    assert saved.optim_wrapper.type == 'convnext_backbone.CPUAutocastOptimWrapper'
    assert done in out and ' loss: nan' not in out
    assert (tmp_path / checkpoint).is_file()
