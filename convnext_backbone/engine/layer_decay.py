"""Layer-wise learning-rate decay for any mmdet/mmseg model whose backbone reports layer depths.

The constructor never looks at class names: it asks ``model.backbone.get_layer_depth`` for each
parameter's layer id, so it serves every detector/segmentor class and any backbone that implements
that method, in either convention:

* ours, ``get_layer_depth(param_name, decay_type)`` (``convnext_backbone.ConvNeXt``: the official
  ConvNeXt rules, ``layer_wise`` and ``stage_wise``);
* mmpretrain's, ``get_layer_depth(param_name, prefix='')`` (its ViT, Swin, ConvNeXt, ...: one rule
  per backbone, which we call ``layer_wise``; ``stage_wise`` is refused for them).

Anything else, or a backbone whose parameters all land on one layer id (decay would do nothing),
is an error that says so: never a silent no-op.

Everything outside the backbone (necks, decode heads, pixel decoders, transformer decoders, query
and level embeddings) is on the top layer id, with the full learning rate, as the ConvNeXt paper's
rule gives the heads. Weight decay follows one rule for every model: none for 1-D parameters
(norms of any kind, biases), layer scale and GRN, and the tables of ``nn.Embedding`` modules
(DETR-style queries, Mask2Former's query features and level embeddings: what mmdet's Mask2Former
recipe exempts through ``custom_keys``, decided here by module type, so no list of names has to
follow the head).
"""
import inspect
import logging
from typing import Callable, Dict, List, Optional, Set, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from ..config_schema import Schema, check_values, choice, number, sequence
from ..models.convnext import DECAY_TYPES  # the rules' names: defined once, by the backbone
from ..registry import OPTIM_WRAPPER_CONSTRUCTORS


class LayerDecayConfigError(ValueError, TypeError):
    """A layer-decay setting or backbone the constructor cannot serve; the message names the
    problem and the fix. Our tools print it as one line (it is raised while mmengine's Runner
    builds the optimizer, so only its class tells it apart from a bug). Still a ValueError /
    TypeError for code that catches those."""


#: What the constructor reads, relative to ``optim_wrapper`` (see ``config_schema``). The
#: optimizer's values are read here (the decay scales ``lr``; ``weight_decay`` is each group's
#: base) or handed to the optimizer this constructor builds (``betas``).
SCHEMA: Schema = {
    'optimizer.lr': number(0, low_open=True, example=1e-4, required=True,
                           about='the base learning rate the decay scales; the recipes use '
                           '1e-4 to 2e-4'),
    'optimizer.weight_decay': number(0, example=0.05, about='AdamW; the recipes use 0.05'),
    'optimizer.betas': sequence(2, number(0, 1, high_open=True, example=0.9),
                                example=(0.9, 0.999), about="Adam's moment rates"),
    'paramwise_cfg.decay_rate': number(0, 1, low_open=True, example=0.9, required=True,
                                       about='1 = no decay; the papers use 0.7-0.95'),
    'paramwise_cfg.decay_type': choice(DECAY_TYPES, about='how parameters map to layer ids'),
    'paramwise_cfg.num_layers': number(1, integer=True, example=6,
                                       about="optional: checked against the backbone's own; "
                                       'drop it to use that'),
}


# Leaf names whose parameters never get weight decay, whatever their shape: layer-scale ``gamma``
# and GRN's ``gamma``/``beta`` (official GRN params are shaped (1, 1, 1, C), so "1-D" misses them).
NO_DECAY_LEAF_NAMES = ('gamma', 'beta')
# mmengine's per-parameter log lines (one per parameter) and frozen-parameter warnings, which we
# replace by one table; other mmengine messages (e.g. bypass_duplicate warnings) still pass.
_MUTED_PREFIXES = ('paramwise_options -- ',)
_MUTED_SUFFIXES = ('is skipped since its requires_grad=False',)


def _unwrap(model: nn.Module) -> nn.Module:
    """Strip DDP-like wrappers (anything that keeps the real model in ``.module``)."""
    while isinstance(getattr(model, 'module', None), nn.Module):
        model = model.module
    return model


def find_backbone(model: nn.Module) -> nn.Module:
    """Return ``model.backbone`` after unwrapping; it must provide ``get_layer_depth``."""
    model = _unwrap(model)
    backbone = getattr(model, 'backbone', None)
    if not callable(getattr(backbone, 'get_layer_depth', None)):
        raise LayerDecayConfigError(
            f'LayerDecayOptimWrapperConstructor needs `model.backbone` with a method '
            f'`get_layer_depth(param_name, decay_type) -> (layer_id, num_layer_ids)`; '
            f'{type(model).__name__}.backbone is {type(backbone).__name__}, which has no such '
            f'method. Use a backbone that implements it (e.g. convnext_backbone.ConvNeXt).')
    return backbone


def layer_depth_function(backbone: nn.Module, decay_type: str
                         ) -> Callable[[str], Tuple[int, int]]:
    """``name -> (layer_id, num_layer_ids)`` for parameter names relative to ``backbone``, in the
    backbone's own convention (see the module docstring)."""
    method = backbone.get_layer_depth
    try:
        names = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):  # builtins / C extensions: no signature to read
        names = []
    second = names[1] if len(names) > 1 else None
    owner = type(backbone).__name__
    if second == 'decay_type':
        return lambda name: method(name, decay_type)
    if second == 'prefix':
        if decay_type != 'layer_wise':
            raise LayerDecayConfigError(
                f'paramwise_cfg decay_type={decay_type!r}: {owner} reports layer depths in '
                "mmpretrain's convention get_layer_depth(param_name, prefix), which defines one "
                "rule per backbone; use decay_type='layer_wise' (its rule) or a backbone with "
                "stage-wise rules (convnext_backbone.ConvNeXt).")
        return lambda name: method(name, '')
    raise LayerDecayConfigError(
        f'{owner}.get_layer_depth{inspect.signature(method) if names else "(...)"} follows neither '
        'known convention: get_layer_depth(param_name, decay_type) (convnext_backbone) or '
        "get_layer_depth(param_name, prefix='') (mmpretrain). Implement one of them.")


class _MuteFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (msg.startswith(_MUTED_PREFIXES) or msg.endswith(_MUTED_SUFFIXES))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimizer constructor with layer-wise (or stage-wise) learning-rate decay.

    Use it as ``optim_wrapper=dict(
    constructor='convnext_backbone.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.95, decay_type='layer_wise'))``. The name differs from
    mmdet's/mmseg's ``LearningRateDecayOptimizerConstructor`` so it can never resolve to theirs.

    ``paramwise_cfg`` keys of this constructor:

    - ``decay_rate`` (float in (0, 1], required).
    - ``decay_type``: ``'layer_wise'`` (default) or ``'stage_wise'``; the backbone maps each
      parameter to ``(layer_id, num_layer_ids)`` for that type.
    - ``num_layers`` (optional): only checked against ``backbone.num_layers`` (an error when they
      differ); the depth always comes from the backbone.

    The backbone is ``model.backbone`` (after stripping ``.module`` wrappers such as DDP); it must
    implement ``get_layer_depth(name, decay_type)`` for names relative to itself. Parameters outside
    the backbone (necks, heads) get the last id, ``num_layer_ids - 1``. Frozen parameters
    (``requires_grad=False``) are left out of the optimizer.

    Composition with mmengine's usual options (``custom_keys``, ``bias_lr_mult``,
    ``bias_decay_mult``, ``norm_decay_mult``, ``dwconv_decay_mult``, ``flat_decay_mult``,
    ``dcn_offset_lr_mult``, ``bypass_duplicate``): mmengine's own rules first give each parameter
    an lr and weight decay exactly as ``DefaultOptimWrapperConstructor`` would; then

    - ``lr = lr_mmengine * decay_rate ** (num_layer_ids - 1 - layer_id)``, i.e. mmengine's
      ``lr_mult`` (from ``custom_keys`` or ``bias_lr_mult``) multiplies the layer-decay scale;
    - ``weight_decay = 0`` for no-decay parameters (dimension <= 1, names ending in ``.bias``,
      leaf names ``gamma``/``beta``: layer scale and GRN, whatever their shape; the weights of
      ``nn.Embedding`` modules, e.g. the query / query-feature / level embeddings of DETR-style
      and Mask2Former heads), otherwise ``wd_mmengine`` (the base weight decay times
      ``decay_mult`` / ``norm_decay_mult`` / ...). A ``decay_mult`` never revives decay on a
      no-decay parameter (0 times anything is 0). A 2-D embedding held as a bare ``nn.Parameter``
      (e.g. Deformable DETR's and DINO's ``level_embed``) is decayed like any weight unless a
      ``custom_keys`` entry gives it ``decay_mult=0.``.
    - Other keys of a ``custom_keys`` entry (e.g. ``momentum``) are kept in the group, as mmengine
      does.

    Example: base lr 1e-4, wd 0.05, ``decay_rate=0.95``, ConvNeXt-T (8 layer ids),
    ``custom_keys={'backbone.stages.0': dict(lr_mult=0.5, decay_mult=0.5)}``: ``stages.0.*.weight``
    (id 1) gets lr ``1e-4 * 0.5 * 0.95**6`` and wd ``0.025``; its biases the same lr and wd 0.

    Parameters are grouped by (layer id, decay/no-decay, final lr and wd, custom-key extras), so the
    optimizer gets a few dozen groups rather than one per parameter. Each group carries
    ``group_name``, ``layer_id`` and ``lr_scale``. One compact table of the groups is logged.
    """

    @staticmethod
    def config_schema() -> Schema:
        """The config values this constructor reads (keys relative to ``optim_wrapper``), with
        their types and ranges: checked by the tools before anything is built, and here."""
        return SCHEMA

    def _validate_cfg(self) -> None:
        super()._validate_cfg()
        check_values(SCHEMA, dict(optimizer=self.optimizer_cfg, paramwise_cfg=self.paramwise_cfg),
                     'optim_wrapper', LayerDecayConfigError)

    @staticmethod
    def _is_no_decay(name: str, param: nn.Parameter, embeddings: Set[int]) -> bool:
        return (param.ndim <= 1 or name.endswith('.bias')
                or name.rsplit('.', 1)[-1] in NO_DECAY_LEAF_NAMES or id(param) in embeddings)

    @staticmethod
    def _embedding_tables(model: nn.Module) -> Set[int]:
        """ids of the parameters of the model's ``nn.Embedding`` modules (and subclasses)."""
        return {id(p) for m in model.modules() if isinstance(m, nn.Embedding)
                for p in m.parameters(recurse=False)}

    def _mmengine_groups(self, model: nn.Module) -> List[dict]:
        """One group per trainable parameter with mmengine's own lr / wd (its logs muted)."""
        raw: List[dict] = []
        # A plain constructor, as its recursive add_params must not come back into ours.
        plain = DefaultOptimWrapperConstructor(
            dict(self.optim_wrapper_cfg, optimizer=self.optimizer_cfg), self.paramwise_cfg)
        logger = MMLogger.get_current_instance()
        mute = _MuteFilter()
        logger.addFilter(mute)
        try:
            plain.add_params(raw, model)
        finally:
            logger.removeFilter(mute)
        return raw

    def _layer_ids(self, model: nn.Module) -> Tuple[Dict[int, int], int]:
        """Map id(param) -> layer id for the backbone's params; also return num_layer_ids."""
        backbone = find_backbone(model)
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        depth_of = layer_depth_function(backbone, decay_type)
        ids: Dict[int, int] = {}
        num_ids: Optional[int] = None
        for name, param in backbone.named_parameters():
            layer_id, n = depth_of(name)
            if num_ids is None:
                num_ids = n
            if n != num_ids or not 0 <= layer_id < n:
                raise LayerDecayConfigError(
                    f'{type(backbone).__name__}.get_layer_depth({name!r}) returned '
                    f'({layer_id}, {n}): ids must lie in [0, n) with one n ({num_ids}) for all '
                    'parameters; fix the backbone\'s get_layer_depth')
            ids[id(param)] = layer_id
        if num_ids is None:
            raise LayerDecayConfigError(
                f'the backbone {type(backbone).__name__} has no parameters: nothing to decay; '
                'drop the layer-decay constructor')
        if len(ids) > 1 and len(set(ids.values())) == 1:
            raise LayerDecayConfigError(
                f'{type(backbone).__name__}.get_layer_depth put every backbone parameter on layer '
                f'id {next(iter(ids.values()))} of {num_ids}: layer decay would change nothing. '
                'Check that the backbone implements its rules for these parameter names (names '
                'relative to the backbone), or drop the layer-decay constructor.')
        wanted = self.paramwise_cfg.get('num_layers')
        actual = getattr(backbone, 'num_layers', num_ids - 2)
        if wanted is not None and wanted != actual:
            raise LayerDecayConfigError(
                f'paramwise_cfg num_layers={wanted} disagrees with the backbone '
                f'{type(backbone).__name__}, which has num_layers={actual}; drop num_layers from '
                'the config (the backbone knows it) or fix it')
        return ids, num_ids

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        """Append the layer-decayed parameter groups of ``module`` (the model) to ``params``."""
        model = _unwrap(module)
        layer_ids, num_ids = self._layer_ids(model)
        names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        rate = self.paramwise_cfg['decay_rate']
        embeddings = self._embedding_tables(model)
        groups: Dict[tuple, dict] = {}
        for raw in self._mmengine_groups(model):
            param = raw['params'][0]
            name = names[id(param)]
            layer_id = layer_ids.get(id(param), num_ids - 1)
            scale = rate ** (num_ids - 1 - layer_id)
            lr = raw.get('lr', self.base_lr) * scale
            no_decay = self._is_no_decay(name, param, embeddings)
            wd = 0. if no_decay else raw.get('weight_decay', self.base_wd)
            extras = {k: v for k, v in raw.items() if k not in ('params', 'lr', 'weight_decay')}
            key = (layer_id, no_decay, lr, wd, repr(sorted(extras.items())))
            if key not in groups:
                groups[key] = {**extras, 'params': [], 'lr': lr, 'layer_id': layer_id,
                               'lr_scale': scale,
                               'group_name': self._group_name(layer_id, no_decay, raw, extras)}
                if wd is not None:
                    groups[key]['weight_decay'] = wd
            groups[key]['params'].append(param)
        params.extend(groups.values())
        frozen = sum(1 for p in model.parameters() if not p.requires_grad)
        print_log(self._table(list(groups.values()), num_ids, frozen), logger='current')

    def _group_name(self, layer_id: int, no_decay: bool, raw: dict, extras: dict) -> str:
        """``layer_<id>_<decay|no_decay>``, tagged with any mmengine multiplier or custom extra."""
        tags = [f'{k}={v}' for k, v in sorted(extras.items())]
        lr, wd = raw.get('lr', self.base_lr), raw.get('weight_decay', self.base_wd)
        if lr != self.base_lr and 'lr_mult' not in extras:
            tags.append(f'lr_mult={lr / self.base_lr:g}')
        if not no_decay and wd != self.base_wd and 'decay_mult' not in extras:
            tags.append(f'decay_mult={wd / self.base_wd:g}' if self.base_wd else f'wd={wd}')
        kind = 'no_decay' if no_decay else 'decay'
        return f'layer_{layer_id}_{kind}' + (f'[{",".join(tags)}]' if tags else '')

    def _table(self, groups: List[dict], num_ids: int, frozen: int) -> str:
        """One compact block: a header and one row per parameter group."""
        cfg = self.paramwise_cfg
        head = (f'LayerDecayOptimWrapperConstructor: {cfg.get("decay_type", "layer_wise")} '
                f'decay_rate={cfg["decay_rate"]}, {num_ids} layer ids, base lr={self.base_lr}, '
                f'weight_decay={self.base_wd}; {len(groups)} groups, '
                f'{sum(len(g["params"]) for g in groups)} trainable tensors, '
                f'{frozen} frozen skipped')
        width = max([len('group')] + [len(g['group_name']) for g in groups])
        rows = [f'{"group":<{width}}  {"layer":>5}  {"lr scale":>9}  {"lr":>10}  '
                f'{"wd":>8}  {"tensors":>7}  {"numel":>10}']
        for g in sorted(groups, key=lambda g: (g['layer_id'], g['group_name'])):
            wd = g.get('weight_decay')
            rows.append(f'{g["group_name"]:<{width}}  {g["layer_id"]:>5}  {g["lr_scale"]:>9.6f}  '
                        f'{g["lr"]:>10.4g}  {"default" if wd is None else f"{wd:.4g}":>8}  '
                        f'{len(g["params"]):>7}  {sum(p.numel() for p in g["params"]):>10}')
        return '\n'.join([head] + rows)
