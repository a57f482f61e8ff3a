"""A whole detector or segmentor from its config, and a pair of them with identical weights.

Used for our config against the host framework's own ConvNeXt config (mmdet's Mask R-CNN,
mmseg's UperNet; both use mmpretrain's backbone): the host model's backbone gets realistic
weights, ours is converted from it by our checkpoint loader, and every other module (neck,
heads) is copied, so both compute the same function and only the backbones' code differs.
"""
import torch

from convnext_backbone.checkpoint import load_pretrained

from .peers import realistic_weights_


def load_cfg(path: str):
    """A config file, or ``'mmdet::...'``/``'mmseg::...'`` from the installed package
    (mmengine's ``get_config``). ``custom_imports`` (ours, or the host's import of mmpretrain)
    are imported on loading."""
    from mmengine.config import Config
    from mmengine.hub import get_config
    return get_config(path) if '::' in path else Config.fromfile(path)


def _registry(scope: str):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def build_model(path: str, scope: str, prepare=None):
    """(model in train mode, fp32 OptimWrapper) from a config, backbone ``init_cfg=None``; the
    config's own optimizer constructor (ours: layer decay; the host's: its LR-decay one).
    ``prepare(cfg)``: a change made to the config first (the same for both of a pair)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    cfg = load_cfg(path)
    if prepare is not None:
        prepare(cfg)
    init_default_scope(cfg.get('default_scope', scope))
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    model = _registry(scope).build(cfg.model)
    model.init_weights()
    optim = cfg.optim_wrapper.copy()
    optim.type = 'OptimWrapper'  # fp32 on CPU (AmpOptimWrapper needs a GPU)
    optim.pop('loss_scale', None)
    return model.train(), build_optim_wrapper(model, optim)


def build_pair(ours_config: str, theirs_config: str, scope: str, seed: int = 0, prepare=None):
    """``{'ours': (model, optim_wrapper), scope: (...)}`` with identical weights: the backbone
    converted from the host's (mmpretrain) backbone by our loader, every other module copied."""
    torch.manual_seed(seed)
    theirs, their_optim = build_model(theirs_config, scope, prepare)
    realistic_weights_(theirs.backbone, seed)
    ours, our_optim = build_model(ours_config, scope, prepare)
    load_pretrained(ours.backbone, theirs.backbone.state_dict(), logger='silent')
    their_sd = theirs.state_dict()
    rest = {k: v for k, v in ours.state_dict().items() if not k.startswith('backbone.')}
    missing = [k for k in rest if k not in their_sd or their_sd[k].shape != rest[k].shape]
    if missing:
        raise RuntimeError(f'the two configs differ outside the backbone: {missing[:5]}')
    with torch.no_grad():
        for key, value in rest.items():
            value.copy_(their_sd[key])
    return {'ours': (ours, our_optim), scope: (theirs, their_optim)}
