"""The model's parts fit each other before it runs: channels out of the backbone (and neck) against
the channels the next part takes in.

A detector or segmentor whose backbone was switched (``arch='v1-tiny'``) while the neck still
expects the old channels builds without complaint and fails at the first forward pass, 70 lines
deep ("expected input ... to have 32 channels, but got 96"), minutes into a run.
:func:`check_model_fits` reads the built model instead (no forward pass, no config parsing):

* the backbone states its outputs (``out_channels``, as ours does; a backbone that does not is
  not checked);
* a neck that takes a list ``in_channels`` (mmdet's FPN, PAFPN, ChannelMapper, ...; mmseg's FPN,
  MultiLevelNeck) must take exactly those channels, in order;
* mmseg decode and auxiliary heads take ``in_channels`` at ``in_index`` of what feeds them
  (the backbone, or the neck when there is one): one index and one number, a list of each
  (``multiple_select``), or a list of indices whose channels are concatenated
  (``resize_concat``);
* mmdet dense heads (``rpn_head``, a one-stage ``bbox_head``) take the neck's single
  ``out_channels``, and so do the RoI extractors of a two-stage detector (they pool the neck's
  maps).

A mismatch is one :class:`ModelFitError` naming both settings and the values to write. It is
called by our tools right after the model is built, and by ``CrashSafeCheckpointHook`` before a
run (our configs name it, so mmdet's and mmseg's own tools check it too).
"""
from typing import Iterator, List, Optional, Tuple

from torch import nn


class ModelFitError(ValueError):
    """Two parts of a model do not fit (channels, output indices)."""


def _ints(value) -> Optional[List[int]]:
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    return None


def _backbone_outputs(backbone: nn.Module) -> Optional[List[int]]:
    return _ints(getattr(backbone, 'out_channels', None))


def _describe_backbone(backbone: nn.Module) -> str:
    spec = getattr(backbone, 'arch_spec', None)
    parts = []
    if spec is not None:
        named = getattr(spec, 'name', None) not in (None, '', 'custom')
        parts.append(f"arch '{spec.name}'" if named else f'channels {list(spec.channels)}')
    indices = getattr(backbone, 'out_indices', None)
    if indices is not None:
        parts.append(f'out_indices {tuple(indices)}')
    return f' ({", ".join(parts)})' if parts else ''


def _neck_outputs(neck: nn.Module) -> Optional[List[int]]:
    """Channels of each of the neck's outputs, when it states them (an int ``out_channels`` for
    ``num_outs`` maps, as FPNs do, or a list)."""
    out = getattr(neck, 'out_channels', None)
    listed = _ints(out)
    if listed:
        return listed
    num_outs = getattr(neck, 'num_outs', None)
    if isinstance(out, int) and isinstance(num_outs, int):
        return [out] * num_outs
    return None


def _heads(model: nn.Module, name: str) -> Iterator[Tuple[str, nn.Module]]:
    """``(config path, module)`` of ``model.<name>``, or of each head when it is a list."""
    head = getattr(model, name, None)
    if isinstance(head, nn.ModuleList):
        for i, each in enumerate(head):
            yield f'model.{name}.{i}', each
    elif isinstance(head, nn.Module):
        yield f'model.{name}', head


def _check_neck(neck: nn.Module, fed: List[int], source: str) -> None:
    wanted = _ints(getattr(neck, 'in_channels', None))
    if wanted is None or wanted == fed:
        return
    raise ModelFitError(
        f'model.neck.in_channels={wanted} does not fit {source}, which gives {len(fed)} '
        f'outputs with channels {fed}: write model.neck.in_channels={fed} (or change the '
        'backbone back).')


def _check_seg_head(path: str, head: nn.Module, fed: List[int], source: str) -> None:
    """mmseg's BaseDecodeHead: ``in_channels`` at ``in_index`` of what feeds it."""
    index, channels = getattr(head, 'in_index', None), getattr(head, 'in_channels', None)
    if index is None or channels is None:
        return
    indices = [index] if isinstance(index, int) else _ints(index)
    if indices is None:
        return
    outside = [i for i in indices if not -len(fed) <= i < len(fed)]
    if outside:
        raise ModelFitError(
            f'{path}.in_index={index} names output {outside[0]}, but {source} gives '
            f'{len(fed)} outputs (indices 0-{len(fed) - 1}) with channels {fed}: write '
            f'{path}.in_index within that range (or change the backbone back).')
    selected = [fed[i] for i in indices]
    if isinstance(channels, int) and isinstance(index, int):
        expected, write = channels == selected[0], selected[0]
    elif isinstance(channels, int):  # resize_concat: the selected maps are concatenated
        expected, write = channels == sum(selected), selected
    else:
        expected, write = _ints(channels) == selected, selected
    if not expected:
        raise ModelFitError(
            f'{path}.in_channels={list(channels) if not isinstance(channels, int) else channels}'
            f' (in_index={index}) does not fit {source}, whose outputs {index} have channels '
            f'{selected[0] if isinstance(index, int) else selected}: write {path}.in_channels='
            f'{write} (or change the backbone back).')


def _check_dense_heads(model: nn.Module, fed: List[int], source: str) -> None:
    """mmdet heads on every neck level: one ``in_channels`` equal to the neck's channels."""
    if len(set(fed)) != 1:
        return
    width = fed[0]
    found: List[Tuple[str, int]] = []
    for name in ('rpn_head', 'bbox_head'):
        for path, head in _heads(model, name):
            if isinstance(getattr(head, 'in_channels', None), int) and \
                    not hasattr(head, 'in_index'):
                found.append((f'{path}.in_channels', head.in_channels))
    roi_head = getattr(model, 'roi_head', None)
    if isinstance(roi_head, nn.Module):
        for name, module in roi_head.named_modules():
            if hasattr(module, 'roi_layers') and \
                    isinstance(getattr(module, 'out_channels', None), int):
                found.append((f'model.roi_head.{name}.out_channels', module.out_channels))
    for setting, value in found:
        if value != width:
            raise ModelFitError(
                f'{setting}={value} does not fit {source}, whose outputs have {width} channels: '
                f'write {setting}={width}.')


def check_model_fits(model: nn.Module) -> None:
    """Raise :class:`ModelFitError` when the model's parts do not fit (see the module's
    docstring); parts that do not state their channels are not checked."""
    model = getattr(model, 'module', model)  # a DDP / TTA wrapper
    backbone = getattr(model, 'backbone', None)
    fed = _backbone_outputs(backbone) if isinstance(backbone, nn.Module) else None
    if fed is None:
        return
    source = f'model.backbone{_describe_backbone(backbone)}'
    neck = getattr(model, 'neck', None)
    if isinstance(neck, nn.Module) and not isinstance(neck, (nn.Sequential, nn.ModuleList)):
        _check_neck(neck, fed, source)
        fed = _neck_outputs(neck)
        source = 'model.neck'
        if fed is None:
            return
        _check_dense_heads(model, fed, source)
    for name in ('decode_head', 'auxiliary_head'):
        for path, head in _heads(model, name):
            _check_seg_head(path, head, fed, source)

