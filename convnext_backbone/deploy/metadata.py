"""What a graph's user needs besides the graph, read from the config: class names, the test
pipeline's resize rule, the preprocessor's numbers and the test-time thresholds, stored in the
ONNX file's ``metadata_props`` (lists and dicts as JSON), and the one-line notes on what the
host computes that the graph cannot see.
"""
import importlib
import json
from typing import List, Optional, Sequence

from torch import nn

from .preprocess import min_input_size, padding_rule

# Test pipeline steps the graph's contract covers: loading (the user loads the image; ours,
# CheckedLoadImageFromFile, loads as mmcv's and names unreadable files), the resize (the user
# resizes, by the rule in the metadata), annotations and packing (no effect).
_LOADING = ('LoadImageFromFile', 'LoadImageFromNDArray', 'CheckedLoadImageFromFile')
_RESIZE = ('Resize',)
_NO_EFFECT = ('LoadAnnotations', 'PackDetInputs', 'PackSegInputs')


def _type(step) -> str:
    return str(step.get('type', '')).split('.')[-1]


def test_pipeline(cfg) -> List[dict]:
    """The pipeline the host's inference API runs: mmdet's ``inference_detector`` reads the test
    dataloader's; mmseg's ``inference_model`` reads ``cfg.test_pipeline``."""
    if cfg.default_scope == 'mmseg' and cfg.get('test_pipeline'):
        return list(cfg.test_pipeline)
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'pipeline' not in dataset and 'dataset' in dataset:  # dataset wrappers
        dataset = dataset['dataset']
    return list(dataset.get('pipeline') or cfg.get('test_pipeline') or [])


def resize_rule(cfg) -> Optional[dict]:
    """The test pipeline's resize as plain data: ``{"type": "Resize", "scale": [w, h],
    "keep_ratio": true, "interpolation": "bilinear"}`` (``scale_factor`` instead of ``scale``
    where the config gives that); None when the pipeline does not resize."""
    for step in test_pipeline(cfg):
        if _type(step) in _RESIZE:
            rule = {'type': 'Resize', 'keep_ratio': bool(step.get('keep_ratio', False)),
                    'interpolation': step.get('interpolation', 'bilinear')}
            for key in ('scale', 'scale_factor'):
                if step.get(key) is not None:
                    value = step[key]
                    rule[key] = list(value) if isinstance(value, (list, tuple)) else value
            return rule
    return None


def unsupported_steps(cfg) -> List[str]:
    """Test pipeline steps that change the image but are neither the resize nor loading."""
    known = _LOADING + _RESIZE + _NO_EFFECT
    return [_type(step) or str(step) for step in test_pipeline(cfg) if _type(step) not in known]


def class_names(cfg) -> Sequence[str]:
    """The dataset's class names: the test dataset's ``metainfo.classes`` if the config sets
    them, else its dataset class's ``METAINFO`` (e.g. mmdet's ``CocoDataset``, mmseg's
    ``ADE20KDataset``), as the host's dataset would report them."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while dataset.get('type', '').split('.')[-1].endswith(('Wrapper', 'ConcatDataset',
                                                           'RepeatDataset')) \
            and 'dataset' in dataset:
        dataset = dataset['dataset']
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes:
        return tuple(classes)
    kind = dataset.get('type')
    if not kind:
        return ()
    registry = importlib.import_module(f'{cfg.default_scope}.registry').DATASETS
    try:
        dataset_class = registry.get(kind)
    except Exception:  # an unknown or unimportable dataset type: no names to give
        dataset_class = None
    return tuple((getattr(dataset_class, 'METAINFO', None) or {}).get('classes', ()))


def _floats(tensor) -> list:
    return [round(float(v), 4) for v in tensor.reshape(-1)]  # the config's numbers, not float32's


def graph_metadata(cfg, model: nn.Module, wrapper: nn.Module, task: str) -> dict:
    """The metadata_props of the graph of ``cfg``'s model (values as strings)."""
    dp = getattr(model, 'data_preprocessor', None)
    divisor, minimum, pad_value = padding_rule(dp)
    preprocess = getattr(wrapper, 'preprocess', None)
    meta = {
        'resize': json.dumps(resize_rule(cfg)),
        'bgr_to_rgb': json.dumps(bool(preprocess is not None and preprocess.swap)),
        'mean': json.dumps(_floats(preprocess.mean) if preprocess is not None else None),
        'std': json.dumps(_floats(preprocess.std) if preprocess is not None else None),
        'pad_size_divisor': str(divisor),
        'pad_min_size': json.dumps(list(minimum)),
        'pad_value': repr(pad_value),
        'min_input_size': str(min_input_size(model)),
    }
    if task == 'backbone':
        return meta
    meta['classes'] = json.dumps(list(class_names(cfg)))
    if task == 'detection':
        rpn, rcnn = model.test_cfg['rpn'], model.test_cfg['rcnn']
        meta.update(
            score_thr=repr(float(rcnn['score_thr'])),
            nms_iou=repr(float(rcnn['nms']['iou_threshold'])),
            max_per_img=str(int(rcnn['max_per_img'])),
            mask_thr_binary=repr(float(wrapper.mask_thr_binary)),
            mask_size=json.dumps(list(wrapper.mask_size)),
            rpn_nms_pre=str(int(rpn.get('nms_pre', -1))),
            rpn_nms_iou=repr(float(rpn['nms']['iou_threshold'])),
            rpn_max_per_img=str(int(rpn['max_per_img'])))
    else:
        meta.update(test_mode=str(model.test_cfg.get('mode', 'whole')),
                    align_corners=json.dumps(wrapper.align_corners))
    return meta


def host_notes(cfg, task: str) -> List[str]:
    """One line per thing the host's result depends on that the graph cannot see."""
    notes = []
    steps = unsupported_steps(cfg)
    if steps:
        notes.append(f'the test pipeline also runs {", ".join(steps)}, which the graph does '
                     'not: apply it to the image before the graph.')
    if resize_rule(cfg) is not None and task != 'backbone':
        notes.append('the graph takes the image as the test pipeline resized it (rule in the '
                     "metadata 'resize'); resize before calling it.")
    if task == 'detection':
        notes.append("mmdet reports boxes and masks in the original image's pixels: divide the "
                     'boxes by the scale factor (new/old width and height) and paste the masks '
                     '(K, 28, 28) at the original size (docs/deployment.md).')
    elif task == 'segmentation':
        notes.append("mmseg resizes seg_logits to the original image's size (bilinear, "
                     'align_corners as in the metadata) before its argmax; do it after the '
                     'graph.')
    return notes
