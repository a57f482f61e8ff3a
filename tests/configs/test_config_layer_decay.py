"""Every parameter of every shipped model gets a defined layer-decay group from the config's own
optimizer settings, checked parameter by parameter (models on the meta device: nothing is
allocated): backbone parameters the id ``backbone.get_layer_depth`` gives them, everything else
(necks, decode heads, pixel and transformer decoders, embeddings) the top id with the full lr;
no weight decay for 1-D parameters, biases, layer scale / GRN and ``nn.Embedding`` tables."""
import pytest
from mmengine.optim import build_optim_wrapper
from torch import nn

from config_helpers import build, load, shipped_configs
from conftest import FAMILY

# One config per family (the others differ only in backbone size), every DeepLabV3+ config and
# the toy DeepLabV3+ (a custom arch: other layer ids).
CONFIGS = [c for c in shipped_configs() if 'deeplabv3plus' in c or any(f in c for f in FAMILY)]
CONFIGS.append('configs/toy/deeplabv3plus_convnext_toy_ade20k.py')


def groups_by_parameter(model, optim_cfg):
    optim_cfg = optim_cfg.copy()
    optim_cfg.pop('loss_scale', None)
    optim_cfg.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU; the groups are the same
    optimizer = build_optim_wrapper(model, optim_cfg).optimizer
    group_of = {}
    for group in optimizer.param_groups:
        for param in group['params']:
            assert id(param) not in group_of, 'a parameter is in two groups'
            group_of[id(param)] = group
    return group_of


@pytest.mark.parametrize('path', CONFIGS)
def test_every_parameter_has_its_layer_group(path):
    cfg = load(path)
    model = build(cfg, device='meta')
    paramwise = cfg.optim_wrapper.paramwise_cfg
    decay_type, rate = paramwise.get('decay_type', 'layer_wise'), paramwise.decay_rate
    base_wd = cfg.optim_wrapper.optimizer.weight_decay
    group_of = groups_by_parameter(model, cfg.optim_wrapper)
    backbone = model.backbone
    top = backbone.get_layer_depth('stages.0.0.norm.weight', decay_type)[1] - 1
    embeddings = {id(p) for m in model.modules() if isinstance(m, nn.Embedding)
                  for p in m.parameters()}
    custom = paramwise.get('custom_keys', {})
    checked = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:  # frozen: left out of the optimizer
            assert id(param) not in group_of, name
            continue
        group = group_of[id(param)]
        if name.startswith('backbone.'):
            expected = backbone.get_layer_depth(name[len('backbone.'):], decay_type)[0]
        else:
            expected = top
        assert group['layer_id'] == expected, name
        assert group['lr_scale'] == pytest.approx(rate ** (top - expected), rel=1e-12), name
        no_decay = (param.ndim <= 1 or name.endswith('.bias') or id(param) in embeddings
                    or name.rsplit('.', 1)[-1] in ('gamma', 'beta'))
        if no_decay:
            assert group['weight_decay'] == 0, name
        elif not any(key in name for key in custom):
            assert group['weight_decay'] == base_wd, name
        checked += 1
    assert checked == len(group_of) > 0
    assert any(not n.startswith('backbone.') for n, _ in model.named_parameters())
