"""Layer decay across the transformer heads (Mask2Former, DINO): every parameter of every shipped
model with these heads gets a defined learning rate and weight decay, checked parameter by
parameter against an independent reference.

The reference: mmdet's own ``LearningRateDecayOptimizerConstructor`` (the official ConvNeXt rules,
with anything outside the backbone on the top layer id) gives each parameter's layer-decayed lr
and its decay / no-decay split; on top of it the host recipe's multipliers as the configs state
them: backbone lr x0.1; no weight decay for query embeddings, query features, level embeddings
and normalisation layers (Mask2Former); and the constructor's one rule of its own: the tables of
``nn.Embedding`` modules are never decayed (DINO's query and denoising label embeddings, which
its host decays). Models are built on the meta device (no memory).
"""
import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from config_helpers import build, load, shipped_configs
from conftest import one_per_family_fast

QUERY_HEAD_CONFIGS = [c for c in shipped_configs() if '/mask2former/' in c or '/dino/' in c]
NUM_LAYERS = {'v1-tiny': 6, 'v1-small': 12, 'v1-base': 12, 'v1-large': 12}
NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def test_every_transformer_head_family_is_covered():
    names = [c.rsplit('/', 1)[-1] for c in QUERY_HEAD_CONFIGS]
    assert sum('coco_panoptic' in n for n in names) == 4
    assert sum(n.endswith('_50e_coco.py') for n in names) == 4
    assert sum('ade20k' in n for n in names) == 4
    assert sum(n.startswith('dino_4scale') for n in names) == 2


def reference(model, cfg):
    """name -> (lr, weight decay) from mmdet's constructor and the host's multipliers."""
    from mmdet.engine.optimizers import LearningRateDecayOptimizerConstructor as Theirs
    optim = cfg.optim_wrapper
    paramwise = optim.paramwise_cfg
    base_lr, base_wd = optim.optimizer.lr, optim.optimizer.weight_decay
    theirs = Theirs(dict(optimizer=dict(type='AdamW', lr=base_lr, weight_decay=base_wd)),
                    dict(decay_rate=paramwise.decay_rate, decay_type=paramwise.decay_type,
                         num_layers=NUM_LAYERS[cfg.model.backbone.arch]))
    groups = theirs(model).optimizer.param_groups
    by_id = {id(p): (g['lr'], g['weight_decay']) for g in groups for p in g['params']}
    keys = paramwise.get('custom_keys', {})
    no_decay_keys = [k for k, v in keys.items() if v.get('decay_mult', 1.0) == 0]
    norm_params = {id(p) for m in model.modules() if isinstance(m, NORMS)
                   for p in m.parameters(recurse=False)} if paramwise.get(
                       'norm_decay_mult') == 0 else set()
    embedding_tables = {id(p) for m in model.modules() if isinstance(m, nn.Embedding)
                        for p in m.parameters(recurse=False)}
    table = {}
    for name, param in model.named_parameters():
        lr, wd = by_id[id(param)]
        if name.startswith('backbone.'):
            lr *= keys['backbone']['lr_mult']
        if any(k in name for k in no_decay_keys) or id(param) in norm_params | embedding_tables:
            wd = 0.
        table[name] = (lr, wd)
    return table


@pytest.mark.parametrize('path', one_per_family_fast(QUERY_HEAD_CONFIGS))  # T fast, others slow
def test_every_parameter_gets_its_layer_decay_and_the_hosts_multipliers(path):
    cfg = load(path)
    model = build(cfg, device='meta')
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.type = 'OptimWrapper'  # the same groups; fp16 wrappers need a GPU
    optimizer = build_optim_wrapper(model, optim_cfg).optimizer
    ours = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in ours, 'a parameter is in two groups'
            ours[id(p)] = (group['lr'], group['weight_decay'])
    names = dict(model.named_parameters())
    assert set(ours) == {id(p) for p in names.values()}, 'every parameter is in one group'
    expected = reference(model, cfg)
    wrong = {n: (ours[id(p)], expected[n]) for n, p in names.items()
             if ours[id(p)] != pytest.approx(expected[n], rel=1e-9)}
    assert not wrong, f'{len(wrong)} of {len(names)} differ, e.g. {list(wrong.items())[:3]}'
    # The rules really act on these heads: the embeddings named by the host go without decay,
    # the head's weights at the full lr with decay, the stem far below the backbone's top.
    tables = {id(p) for m in model.modules() if isinstance(m, nn.Embedding)
              for p in m.parameters(recurse=False)}
    head = [n for n in names if not n.startswith('backbone.') and n.endswith('.weight')
            and names[n].ndim > 1 and id(names[n]) not in tables
            and not any(k in n for k in ('embed', 'query_feat'))]
    base_lr = cfg.optim_wrapper.optimizer.lr
    assert head and all(expected[n] == (base_lr, cfg.optim_wrapper.optimizer.weight_decay)
                        for n in head)
    embeds = [n for n in names if any(k in n for k in ('query_embed', 'query_feat',
                                                       'level_embed'))]
    if '/mask2former/' in path:
        assert len(embeds) >= 3 and all(expected[n][1] == 0 for n in embeds)
    stem = expected['backbone.downsample_layers.0.0.weight'][0]
    top = expected['backbone.norm3.weight'][0]
    assert top == pytest.approx(base_lr * 0.1) and stem < top * 0.6
