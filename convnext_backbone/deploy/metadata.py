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

# Test pipeline steps the graph's contract covers: loading (the user loads the image, as the
# metadata's 'load' says; subclasses such as our CheckedLoadImageFromFile load the same), the
# resize (the user resizes, by the rule in the metadata), annotations and packing (no effect).
_LOADING = ('LoadImageFromFile', 'LoadImageFromNDArray')
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


def _is_loading(step) -> bool:
    return _type(step) in _LOADING or _type(step).endswith('LoadImageFromFile')


def load_rule(cfg) -> Optional[dict]:
    """The test pipeline's image loading as plain data: ``{"type": "LoadImageFromFile",
    "color_type": "color", "imdecode_backend": "cv2", "channel_order": "bgr"}`` (mmcv's
    ``imfrombytes`` arguments); None when the pipeline loads no file."""
    for step in test_pipeline(cfg):
        if _is_loading(step) and _type(step) != 'LoadImageFromNDArray':
            return {'type': 'LoadImageFromFile', 'color_type': step.get('color_type', 'color'),
                    'imdecode_backend': step.get('imdecode_backend', 'cv2'),
                    'channel_order': 'bgr'}
    return None


def load_note(rule: Optional[dict]) -> Optional[str]:
    """The one line on how the host decodes an image file, which the graph cannot see."""
    if rule is None:
        return None
    if (rule['color_type'], rule['imdecode_backend']) == ('color', 'cv2'):
        return ('mmcv decodes the image file with OpenCV, cv2.imdecode(bytes, '
                'cv2.IMREAD_COLOR) (as cv2.imread): EXIF orientation applied, BGR, grayscale '
                'repeated to 3 channels, alpha dropped, 16-bit cut to 8 (value >> 8); load it '
                "the same way (PIL's Image.open ignores the EXIF orientation and gives RGB) "
                "(metadata 'load').")
    return (f"the test pipeline decodes image files with color_type={rule['color_type']!r}, "
            f"imdecode_backend={rule['imdecode_backend']!r}: load them the same way "
            f"(mmcv.imfrombytes(bytes, flag={rule['color_type']!r}, "
            f"backend={rule['imdecode_backend']!r})) before the graph (metadata 'load').")


def resize_rule(cfg) -> Optional[dict]:
    """The test pipeline's resize as plain data: ``{"type": "Resize", "scale": [w, h],
    "keep_ratio": true, "interpolation": "bilinear", "backend": "cv2", "rule": ...,
    "rule_syntax": ..., "resample": ...}`` (``scale_factor`` instead of ``scale`` where the
    config gives that); None when the pipeline does not resize. ``rule`` is the size
    arithmetic of mmcv's ``Resize`` / ``imrescale`` (and mmdet's ``Resize``) written out with the
    config's numbers, ``resample`` the call that resizes as the host does: enough for a port
    with no Python (tests/deploy/test_reference.py checks ``rule`` against the host's own
    transform and a port written from this metadata against the reference outputs)."""
    for step in test_pipeline(cfg):
        if _type(step) in _RESIZE:
            rule = {'type': 'Resize', 'keep_ratio': bool(step.get('keep_ratio', False)),
                    'interpolation': step.get('interpolation', 'bilinear'),
                    'backend': step.get('backend', 'cv2')}
            for key in ('scale', 'scale_factor'):
                if step.get(key) is not None:
                    value = step[key]
                    rule[key] = list(value) if isinstance(value, (list, tuple)) else value
            rule.update(rule=size_rule(rule), rule_syntax=RULE_SYNTAX,
                        resample=resample_call(rule['interpolation'], rule['backend']))
            return rule
    return None


RULE_SYNTAX = ("Python statements on the loaded image's height h and width w (64-bit floats, "
               '/ divides exactly, int() truncates toward zero): the graph takes the image '
               'resized to new_h x new_w; the graph\'s boxes divided by scale_factor (x, y) are '
               "in the loaded image's pixels")
_CV2 = {'nearest': 'INTER_NEAREST', 'bilinear': 'INTER_LINEAR', 'bicubic': 'INTER_CUBIC',
        'area': 'INTER_AREA', 'lanczos': 'INTER_LANCZOS4'}  # mmcv's cv2_interp_codes
_PIL = {'nearest': 'NEAREST', 'bilinear': 'BILINEAR', 'bicubic': 'BICUBIC', 'box': 'BOX',
        'lanczos': 'LANCZOS', 'hamming': 'HAMMING'}  # mmcv's pillow_interp_codes


def _number(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def size_rule(rule: dict) -> str:
    """mmcv's arithmetic for the resized size, with the config's numbers: ``Resize`` turns a
    ``scale_factor`` into a size (``_scale_size``: int(x * s + 0.5)); with ``keep_ratio``,
    ``imrescale`` fits that size's long and short sides (``rescale_size``), else ``imresize``
    takes it as it is."""
    if rule.get('scale') is not None:
        size_w, size_h = (_number(v) for v in _pair(rule['scale']))
        steps = []
    else:
        fx, fy = (_number(v) for v in _pair(rule['scale_factor']))
        steps = [f'size_w = int(w * {fx} + 0.5)', f'size_h = int(h * {fy} + 0.5)']
        size_w, size_h = 'size_w', 'size_h'
    if rule['keep_ratio']:
        if steps:
            longer, shorter = f'max({size_w}, {size_h})', f'min({size_w}, {size_h})'
        else:
            longer, shorter = max(size_w, size_h, key=float), min(size_w, size_h, key=float)
        steps += [f'f = min({longer} / max(h, w), {shorter} / min(h, w))',
                  'new_w = int(w * f + 0.5)', 'new_h = int(h * f + 0.5)']
    else:
        steps += [f'new_w = {size_w}', f'new_h = {size_h}']
    return '; '.join(steps + ['scale_factor = (new_w / w, new_h / h)'])


def resample_call(interpolation: str, backend: str = 'cv2') -> str:
    """The resize call of mmcv's ``imresize`` for ``interpolation`` and ``backend``, on the
    loaded image (H x W x 3 uint8, as loaded)."""
    if backend == 'pillow':
        return (f'PIL.Image.fromarray(image).resize((new_w, new_h), '
                f'PIL.Image.{_PIL.get(interpolation, interpolation)})')
    return (f'cv2.resize(image, (new_w, new_h), '
            f'interpolation=cv2.{_CV2.get(interpolation, interpolation)})')


def unsupported_steps(cfg) -> List[str]:
    """Test pipeline steps that change the image but are neither the resize nor loading."""
    known = _RESIZE + _NO_EFFECT
    return [_type(step) or str(step) for step in test_pipeline(cfg)
            if _type(step) not in known and not _is_loading(step)]


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
        'load': json.dumps(load_rule(cfg)),
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
    loading = load_note(load_rule(cfg))
    if loading:
        notes.append(loading)
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
