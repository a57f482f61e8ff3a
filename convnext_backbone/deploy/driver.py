"""The export driver: config + checkpoint -> model (strictly loaded) -> exportable wrapper ->
ONNX file with its contract in the metadata.

Exported with PyTorch's TorchScript-based exporter (``dynamo=False``), opset 17: it traces the
data-dependent post-processing (NMS, per-level RoI selection) with real data, and our ops write
standard ONNX operators for it. Everything here raises :class:`ExportError` for bad input.
"""
import importlib
import os
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..checkpoint.files import atomic_target
from .errors import ExportError
from .preprocess import check_shape, coarsest_stride, min_input_size

OPSET = 17


def load_config(config: str, cfg_options: Optional[dict] = None):
    """Read a config (ours or any that names our backbone) and check it has a model we know."""
    from mmengine.config import Config

    import convnext_backbone  # noqa: F401  (registers our modules, applies the stack fixes)
    if not os.path.isfile(config):
        raise ExportError(f'config {config!r} does not exist: give the path of a config file, '
                          'e.g. configs/maskrcnn_convnext_t_coco.py.')
    try:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    except Exception as exc:  # syntax errors, missing bases, bad --cfg-options: many kinds
        raise ExportError(f'config {config} could not be read ({type(exc).__name__}: '
                          f'{_first_line(exc)}): fix the file or the --cfg-options.') from None
    if cfg.get('default_scope') not in ('mmdet', 'mmseg') or 'model' not in cfg:
        raise ExportError(f'config {config} is neither an mmdet nor an mmseg model config '
                          f"(default_scope={cfg.get('default_scope')!r}): export one of the "
                          'configs under configs/ or one that inherits them.')
    backbone = cfg.model.get('backbone')
    if isinstance(backbone, dict):
        backbone['init_cfg'] = None  # weights come from the checkpoint; never download here
    return cfg


def build_model(cfg, seed: int = 0, device: str = 'cpu') -> nn.Module:
    """Build ``cfg.model`` in its scope, SyncBN reverted to BN, in eval mode. Its random weights
    are drawn with ``seed`` (the global RNG is left as it was), so a model exported without a
    checkpoint can be rebuilt to compare with. ``device='meta'`` allocates no weights (checks)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    models = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            try:
                model = revert_sync_batchnorm(models.build(cfg.model))
            except Exception as exc:  # the registry's KeyError, modules' own checks, ...
                raise ExportError(f'the model of {cfg.filename} could not be built '
                                  f'({type(exc).__name__}: {_first_line(exc)}): fix the config '
                                  'or the --cfg-options.') from None
    return model.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().strip('"')
    return text.splitlines()[0][:300] if text else '(no message)'


def _brief(keys, limit: int = 3) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return f'{len(keys)} ({shown}{", ..." if len(keys) > limit else ""})'


def load_weights(model: nn.Module, checkpoint: str, config_name: str = 'the config') -> None:
    """Load a checkpoint into ``model`` strictly, read through the package's safe loader: any
    missing, unexpected or mis-shaped key is an :class:`ExportError` naming them."""
    from convnext_backbone.checkpoint import CheckpointError, read_state_dict
    if not os.path.isfile(checkpoint):
        raise ExportError(f'checkpoint {checkpoint} does not exist: give the path of a checkpoint '
                          f'trained with {config_name} (e.g. work_dirs/NAME/epoch_36.pth), or '
                          "'none' to export random weights.")
    try:
        state = read_state_dict(checkpoint)
    except (CheckpointError, FileNotFoundError) as exc:
        raise ExportError(f'checkpoint {checkpoint}: {exc}') from None
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in own
                  if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = [f'{name} keys: {_brief(keys)}' for name, keys in
                 (('missing', missing), ('unexpected', unexpected),
                  ('mis-shaped (checkpoint vs model)', mismatched)) if keys]
        raise ExportError(
            f'checkpoint {checkpoint} does not fit the model of {config_name}: '
            f'{"; ".join(parts)}. Export with the config the checkpoint was trained with (a '
            'pretrained backbone-only checkpoint belongs in model.backbone.init_cfg, not here).')
    model.load_state_dict(state, strict=True)


def task_of(cfg, backbone_only: bool = False) -> str:
    if backbone_only:
        return 'backbone'
    return 'detection' if cfg.default_scope == 'mmdet' else 'segmentation'


def wrap(model: nn.Module, task: str) -> nn.Module:
    """The exportable module for ``task``; :class:`ExportError` for a model we cannot export.

    The wrapper is in the model's own mode (eval for a built model): a new module starts in
    training mode, and an exporter that restores the wrapper's mode afterwards would otherwise
    leave the user's model training (drop path on, outputs random)."""
    return _wrapper_for(model, task).train(model.training)


def _wrapper_for(model: nn.Module, task: str) -> nn.Module:
    from .detector import DetectorExport
    from .exportable import exportable_collections, refusal
    from .segmentor import BackboneExport, SegmentorExport
    reason = refusal(model, task)
    if reason is not None:
        try:
            listed = ', '.join(exportable_collections())
        except (OSError, ValueError, KeyError) as exc:  # a model index that cannot be read
            listed = f'(the model index could not be read: {type(exc).__name__}: {exc})'
        raise ExportError(f'cannot export this model: {reason}. Whole models export from these '
                          f'configs of the model index: {listed} (or any config with such a '
                          'model); export the backbone alone with --backbone-only.')
    if task == 'backbone':
        return BackboneExport(model.backbone, getattr(model, 'data_preprocessor', None))
    try:
        return SegmentorExport(model) if task == 'segmentation' else DetectorExport(model)
    except (TypeError, AttributeError, KeyError) as exc:  # a head the wrappers do not know
        raise ExportError(f'cannot export this model: {type(exc).__name__}: {exc}. Export the '
                          'backbone alone with --backbone-only.') from None


def _dynamic_axes(task: str, output_names: Sequence[str], static: bool = False) -> dict:
    if static:  # only the number of detections stays data-dependent
        return {name: {0: 'num_dets'} for name in output_names} if task == 'detection' else {}
    axes = {'images': {2: 'height', 3: 'width'}}
    if task == 'detection':
        axes.update({name: {0: 'num_dets'} for name in output_names})
    else:
        axes['images'][0] = 'batch'
        for name in output_names:
            axes[name] = {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
        if task == 'segmentation':
            axes['seg_logits'] = {0: 'batch', 2: 'height', 3: 'width'}
    return axes


def _declare_output_shapes(proto, wrapper: nn.Module, task: str) -> None:
    """Write the detector outputs' fixed sizes into the graph's declared output shapes (the
    exporter names them after the ops that made them): boxes (K, 4), masks (K, h, w)."""
    if task != 'detection':
        return
    fixed = {'boxes': (4,), 'masks': tuple(wrapper.mask_size)}
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        for axis, size in enumerate(fixed.get(output.name, ()), start=1):
            if axis < len(dims):
                dims[axis].Clear()
                dims[axis].dim_value = size
        if output.name in fixed or output.name in ('scores', 'labels'):
            dims[0].Clear()
            dims[0].dim_param = 'num_dets'


def export_onnx(wrapper: nn.Module, task: str, out: str, shape: Tuple[int, int],
                minimum: int = 1, metadata: Optional[dict] = None, seed: int = 0,
                static: bool = False) -> str:
    """Trace ``wrapper`` on a random image batch of ``shape`` and write ``out``; ``static``
    fixes the input to (1, 3, *shape) (for runtimes that want static shapes)."""
    import onnx
    check_shape(shape, minimum)
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(1, 3, *shape, generator=generator) * 255
    names = list(wrapper.output_names)
    with atomic_target(out) as temporary:  # an earlier file at ``out`` stays until the end
        _trace(wrapper, task, temporary, images, names, static)
        proto = onnx.load(temporary)
        _declare_output_shapes(proto, wrapper, task)
        onnx.checker.check_model(proto)
        props = {'task': task, 'opset': str(OPSET), 'min_input_size': str(minimum),
                 'input': input_description(shape if static else None),
                 **{k: str(v) for k, v in (metadata or {}).items()}}
        if static:
            props['static_shape'] = f'1 3 {shape[0]} {shape[1]}'
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, temporary)
    return out


def input_description(static_shape: Optional[Sequence[int]] = None) -> str:
    """The metadata's ``input``: what the graph takes; a ``--static`` graph one size only."""
    what = ('float32, channels as loaded, 0-255, the image as the test pipeline resized it '
            "(metadata 'resize'), unpadded")
    if static_shape is None:
        return f'images (N, 3, H, W) {what}, any H and W'
    height, width = static_shape
    return (f'images (1, 3, {height}, {width}) {what}: exactly {height}x{width} (exported with '
            f'--static): an image that the resize brings to another size cannot be fed (do '
            f'not pad or crop it to {height}x{width}: the host pads only to its size divisor, '
            'the results would differ); export again with --shape of that size, or without '
            '--static for any H and W')


def _trace(wrapper: nn.Module, task: str, path: str, images: torch.Tensor, names: List[str],
           static: bool) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the exporter's deprecation and tracer warnings
        try:
            torch.onnx.export(wrapper, (images,), path, dynamo=False, opset_version=OPSET,
                              input_names=['images'], output_names=names,
                              dynamic_axes=_dynamic_axes(task, names, static),
                              do_constant_folding=True)
        except Exception as exc:  # the exporter raises many kinds; name the op that failed
            raise ExportError(f'torch.onnx.export failed for the {task} graph: '
                              f'{type(exc).__name__}: {_first_line(exc)}') from None


def refuse_slide(cfg, config: str) -> None:
    """Sliding-window inference is not in the graphs: say so, and how to export instead."""
    test_cfg = cfg.model.get('test_cfg') or {}
    if test_cfg.get('mode') != 'slide':
        return
    crop, stride = test_cfg.get('crop_size'), test_cfg.get('stride')
    raise ExportError(
        f'{config} tests with sliding windows (model.test_cfg.mode=slide, crop {crop}, stride '
        f'{stride}), which the graph does not compute: export whole-image inference with '
        '--cfg-options model.test_cfg.mode=whole (the graph then equals mmseg run with that '
        'option; on images larger than the crop its logits differ from the sliding-window '
        'ones), or export the backbone alone with --backbone-only.')


def export(config: str, checkpoint: Optional[str], out: str, shape: Optional[Sequence[int]] = None,
           backbone_only: bool = False, cfg_options: Optional[dict] = None,
           static: bool = False, notes: Optional[List[str]] = None) -> str:
    """``tools/export.py``: config + checkpoint (``None``: random weights) -> ONNX file, or a
    ``torch.export`` program when ``out`` ends in ``.pt2`` (backbone and segmentors).
    ``notes``, if given, receives one line per thing the host's result depends on that the
    graph cannot see (the tool prints them)."""
    from .metadata import graph_metadata, host_notes
    if not out.endswith(('.onnx', '.pt2')):
        raise ExportError(f'--out {out}: name the output file *.onnx (ONNX) or *.pt2 '
                          '(torch.export), e.g. --out model.onnx')
    cfg = load_config(config, cfg_options)
    task = task_of(cfg, backbone_only)
    if task == 'segmentation':
        refuse_slide(cfg, config)
    model = build_model(cfg)
    minimum = min_input_size(model)
    shape = tuple(shape) if shape else default_shape()
    check_shape(shape, minimum)
    wrapper = wrap(model, task).eval()  # shares the model's layers: loading below fills both
    if checkpoint is not None:
        load_weights(model, checkpoint, config)
    if notes is not None:
        notes.extend(host_notes(cfg, task))
    if out.endswith('.pt2'):
        from .pt2 import export_pt2
        return export_pt2(wrapper, task, out, shape, coarsest_stride(model), static=static)
    metadata = {'config': os.path.basename(config),
                **graph_metadata(cfg, model, wrapper, task)}
    return export_onnx(wrapper, task, out, shape, minimum, metadata, static=static)


def default_shape() -> Tuple[int, int]:
    """A small export size (any size works afterwards; the graph's H and W are dynamic)."""
    return (256, 256)
