"""The cases ``tools/benchmark_backbone.py`` times: each implementation in each mode, as a step.

``backbone``: ours, timm's and mmpretrain's backbone (channels-first and ``*_cl`` channels-last),
same weights, checked to compute the same features; with ``--ablation``, ours with each fast-path
technique off. ``maskrcnn``/``upernet``: our config against mmdet's/mmseg's own, same weights,
checked to give the same loss. ``with_cp``: our training step with and without checkpointing.
Every case of ours notes which paths :func:`convnext_backbone.models.fast_path.block_path` chose
for its blocks, so a table always says what was measured.
"""
import contextlib
import copy
import os
from collections import Counter
from typing import List

import torch

from convnext_backbone.models import ConvNeXt
from convnext_backbone.models.block import ConvNeXtBlock
from convnext_backbone.models.fast_path import block_path
from convnext_backbone.models.switches import SWITCHES

from . import detectors, peers, segmentors
from .device import DTYPES, on_device, synchronize
from .measure import Case

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMPLS = ('ours', 'timm', 'timm_cl', 'mmpretrain', 'mmpretrain_cl')

# What each fast-path technique buys: ours with one of them off (``SWITCHES`` fields set around
# each step), or the whole block op by op (None: ``fast_path=False``).
ABLATIONS = {
    'no-onednn': dict(onednn=False),
    'no-fold': dict(fold_layer_scale=False),
    'no-dwgrad': dict(depthwise_weight_grad=False),
    'no-chunks': dict(chunk_elements=1 << 62),
    'onednn-gemms': dict(mkl_gemms=False),  # oneDNN's fused matmuls whatever the ISA
    'mkl-gemms': dict(mkl_gemms=True),  # aten's (MKL) GEMMs whatever the ISA
    'plain': None,
}


def _config(*names: str) -> str:
    """The first of our configs that exists (the configs folder is being reorganised)."""
    paths = [os.path.join(REPO, 'configs', n) for n in names]
    return next((p for p in paths if os.path.exists(p)), paths[0])


def _forward(model, x):
    def step():
        model.eval()
        with torch.no_grad():
            return model(x)
    return step


def _train(model, x):
    def step():
        model.train()
        model.zero_grad(set_to_none=True)
        outs = model(x)
        sum(o.float().sum() for o in outs).backward()
    return step


def switched(step, changes):
    """``step`` run with the ``SWITCHES`` fields in ``changes`` set (restored afterwards)."""
    @contextlib.contextmanager
    def switches_set():
        saved = {k: getattr(SWITCHES, k) for k in changes}
        for k, v in changes.items():
            setattr(SWITCHES, k, v)
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(SWITCHES, k, v)

    def run():
        with switches_set():
            return step()
    return run


def paths_taken(model, step) -> str:
    """The block paths ``block_path`` chooses during one ``step`` of ``model``, with counts."""
    counts = Counter()
    def record(module, args):
        counts.update([block_path(module, args[0]).name])
    hooks = [m.register_forward_pre_hook(record)
             for m in model.modules() if isinstance(m, ConvNeXtBlock)]
    try:
        step()
    finally:
        for h in hooks:
            h.remove()
    return ' '.join(f'{n} x{c}' for n, c in counts.items())


def backbone_cases(args, only=None) -> List[Case]:
    impls = [i for i in args.impls.split(',') if only is None or i == only]
    if args.memory_format != 'both':
        keep = args.memory_format == 'channels_last'
        impls = [i for i in impls if i == 'ours' or i.endswith('_cl') == keep]
    models = peers.build_backbones(args.arch, [i.split('_')[0] for i in impls] + ['ours'])
    models = {name: model.to(args.device) for name, model in models.items()}
    x = torch.randn(args.batch, 3, args.size, args.size,
                    generator=torch.Generator().manual_seed(1)).to(args.device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    def make(mode, model, inp):
        return on_device({'infer': _forward, 'train': _train}[mode](model, inp), args.device,
                         args.dtype)
    cases = []
    for impl in impls:
        model = models[impl.split('_')[0]]
        inp, fmt = (x_cl, 'channels_last') if impl.endswith('_cl') else (x, 'channels_first')
        if impl.endswith('_cl'):
            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        fn = torch.compile(model) if args.compile else model
        for mode in args.modes.split(','):
            cases.append(Case(impl, mode, fmt, make(mode, fn, inp), model=model))
            if impl == 'ours' and only is None and not args.compile:
                cases[-1].note = paths_taken(model, cases[-1].step)
    if args.ablation:
        for name, changes in ABLATIONS.items():
            if only is None or only == f'ours -{name}':
                model = models['ours']
                if changes is None:
                    model = ConvNeXt(arch=args.arch, fast_path=False).to(args.device)
                    model.load_state_dict(models['ours'].state_dict())
                for mode in args.modes.split(','):
                    step = switched(make(mode, model, x), changes or {})
                    cases.append(Case(f'ours -{name}', mode, 'channels_first', step))
                    if only is None:
                        cases[-1].note = paths_taken(model, step)
    if only is None:
        check_features(models['ours'], x, cases, FEATURE_TOLERANCE[args.dtype])
    return cases


# Largest relative feature difference allowed between a peer (under autocast in the dtype) and
# our fp32 features: fp32 rounding, and about 3x what tests/models/test_mixed_precision.py
# measured for bf16/fp16.
FEATURE_TOLERANCE = {'fp32': 1e-4, 'bf16': 5e-2, 'fp16': 1e-2}


def check_features(ours, x, cases: List[Case], tolerance: float = 1e-4) -> None:
    """Every other inference case must compute our fp32 features (max relative difference <=
    ``tolerance``, noted in the case), before any timing counts."""
    ours = ours.eval()
    with torch.no_grad():
        ref = ours(x)
        for case in cases:
            if case.mode == 'infer' and case.name != 'ours':
                outs = case.first_call()
                if case.name.startswith('timm'):
                    outs = peers.output_norms(ours)(outs)
                diff = peers.max_rel_diff(outs, ref)
                case.note = f'max rel diff {diff:.1e}; {case.note}'.rstrip('; ')
                if diff > tolerance:
                    raise RuntimeError(f'{case.name} features differ from ours: {diff:.2e}')


def host_cases(args, only=None) -> List[Case]:
    """Our Mask R-CNN / UperNet config against mmdet's / mmseg's own: ``train`` is one
    ``model.train_step(data, optim_wrapper)``, ``infer`` one ``model.test_step(data)``."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance('benchmark_backbone', log_level='WARNING')  # quiet constructors
    if args.mode == 'maskrcnn':
        built = detectors.build_detectors(_config('maskrcnn_convnext_t_coco.py'))
        data = detectors.detection_batch(args.batch, args.size, height=args.height)
    else:
        built = segmentors.build_segmentors(_config('upernet/upernet_convnext_t_160k_ade20k.py',
                                                    'upernet_convnext_t_ade20k.py'), args.size)
        data = segmentors.segmentation_batch(args.batch, args.size)
    cases = []
    for name, (model, optim) in built.items():
        if only is not None and name != only:
            continue
        model.to(args.device)
        optim = mixed_precision_wrapper(optim, args.device, args.dtype)
        for mode in args.modes.split(','):
            if mode == 'train':  # autocast from the optim wrapper, as in a training run
                def step(model=model, optim=optim):
                    model.train()
                    out = model.train_step(data, optim)
                    synchronize(args.device)
                    return out
            else:
                def step(model=model):
                    model.eval()
                    with torch.no_grad():
                        return model.test_step(data)
                step = on_device(step, args.device, args.dtype)
            cases.append(Case(name, mode, 'channels_first', step))
            if only is None:
                cases[-1].note = f'loss {first_loss(model, data, args.device, args.dtype):.6f}'
    return cases


def mixed_precision_wrapper(optim, device: str, dtype: str):
    """The fp32 ``OptimWrapper`` of a host-model pair, or for ``--dtype bf16/fp16`` the wrapper
    a mixed-precision run uses: mmengine's ``AmpOptimWrapper`` on CUDA (dynamic loss scale), our
    ``CPUAutocastOptimWrapper`` (bf16) on the CPU; same optimizer."""
    if dtype == 'fp32':
        return optim
    dtype_name = {'bf16': 'bfloat16', 'fp16': 'float16'}[dtype]
    if device == 'cuda':
        from mmengine.optim import AmpOptimWrapper
        return AmpOptimWrapper(optimizer=optim.optimizer, dtype=dtype_name)
    from convnext_backbone.engine import CPUAutocastOptimWrapper
    return CPUAutocastOptimWrapper(optimizer=optim.optimizer, dtype=dtype_name)


def first_loss(model, data, device: str = 'cpu', dtype: str = 'fp32') -> float:
    """The loss of ``data`` before any update, stochastic depth off (its random masks are drawn
    differently by the two backbones), the same seed for the samplers: equal models, equal loss
    (under autocast in ``dtype``: equal to its rounding)."""
    drop = {m: m.drop_prob for m in model.modules() if hasattr(m, 'drop_prob')}
    for m in drop:
        m.drop_prob = 0.
    torch.manual_seed(0)
    model.train()
    with torch.no_grad(), torch.autocast(device, dtype=DTYPES[dtype], enabled=dtype != 'fp32'):
        batch = model.data_preprocessor(data, True)
        loss = float(model.parse_losses(model(**batch, mode='loss'))[0])
    for m, p in drop.items():
        m.drop_prob = p
    return loss


def with_cp_cases(args, only=None) -> List[Case]:
    x = torch.randn(args.batch, 3, args.size, args.size,
                    generator=torch.Generator().manual_seed(1)).to(args.device)
    cases = []
    base = peers.build_backbones(args.arch, ['ours'])['ours']
    for name, with_cp in (('ours', False), ('ours with_cp', True)):
        if only is None or name == only:
            model = ConvNeXt(arch=args.arch, with_cp=with_cp)
            model.load_state_dict(base.state_dict())
            step = on_device(_train(model.to(args.device), x), args.device, args.dtype)
            cases.append(Case(name, 'train', 'channels_first', step))
    return cases


def make_cases(args, only=None) -> List[Case]:
    return {'backbone': backbone_cases, 'maskrcnn': host_cases, 'upernet': host_cases,
            'with_cp': with_cp_cases}[args.mode](args, only)
