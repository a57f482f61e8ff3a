"""Evaluate an exported graph with the host's own metric on the config's own test set.

``tools/test_onnx.py`` runs this. It is ``tools/test.py`` with the PyTorch model replaced by the
graph, and nothing else replaced: the config's test dataloader and pipeline give each image, the
graph is fed per its contract (the pipeline's resized image, unpadded, float32 0-255, channels
as loaded), its outputs become the host's data samples as the host's post-processing makes them,
and the config's own evaluator (mmdet's ``CocoMetric``, mmseg's ``IoUMetric``, ...) scores them:

* detection: boxes divided by the resize's ``scale_factor`` (the original image's pixels), the
  (K, 28, 28) RoI masks pasted into their boxes at the original size and thresholded at the
  config's ``mask_thr_binary`` (:mod:`.paste`, mmdet's ``_do_paste_mask``);
* segmentation: the logits resized bilinearly to the original size (``align_corners`` of the
  decode head), then the argmax (a one-channel head: sigmoid and its ``threshold``), as mmseg's
  ``postprocess_result``.

So any graph of the contract can be scored: fp32, int8 (dynamic or static), another runtime's
optimisation of it. A graph that does not belong to the config (another task, other classes, other
test-time thresholds inside the graph) is refused in one line: its numbers would not be the
config's model's.
"""
import json
import os
from typing import Callable, Dict, Optional

import numpy as np
import torch

from .errors import ExportError
from .paste import paste_masks
from .runtime import OnnxModel
from .to_original import boxes_to_original, logits_to_original

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation'}

# Test-time settings inside a detector graph (metadata key -> the config's model.test_cfg path).
GRAPH_SETTINGS = {
    'score_thr': ('rcnn', 'score_thr'), 'nms_iou': ('rcnn', 'nms', 'iou_threshold'),
    'max_per_img': ('rcnn', 'max_per_img'), 'rpn_nms_pre': ('rpn', 'nms_pre'),
    'rpn_nms_iou': ('rpn', 'nms', 'iou_threshold'), 'rpn_max_per_img': ('rpn', 'max_per_img'),
}


def open_graph(path: str, threads: int = 0) -> OnnxModel:
    """The graph at ``path`` in an onnxruntime CPU session; one-line errors for a missing file,
    a file onnxruntime cannot read, or a graph not written by ``tools/export.py``."""
    if not os.path.isfile(path):
        raise ExportError(f'graph {path} does not exist: give the .onnx file that '
                          'tools/export.py wrote (e.g. work_dirs/model.onnx).')
    try:
        graph = OnnxModel(path, threads=threads)
    except ImportError as exc:
        raise ExportError(f'running {path} needs onnxruntime ({exc}): '
                          "pip install -e '.[deploy]'.") from None
    except Exception as exc:  # onnxruntime's own exceptions for a file it cannot load
        text = str(exc).strip().splitlines()
        raise ExportError(f'graph {path} could not be loaded by onnxruntime '
                          f'({type(exc).__name__}: {text[0][:200] if text else "no message"}): '
                          'give an .onnx file written by tools/export.py.') from None
    if 'task' not in graph.metadata:
        raise ExportError(f'graph {path} has no task in its metadata: it was not written by '
                          'tools/export.py, whose metadata (classes, resize, thresholds) the '
                          'evaluation reads; export the model with tools/export.py.')
    return graph


def _setting(test_cfg, path):
    value = test_cfg
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def check_graph_fits(cfg, graph: OnnxModel, config: str, graph_path: str) -> None:
    """Refuse a graph whose numbers would not be the config's model's: another task, other class
    names, other test-time settings baked into the graph, or a config that tests with sliding
    windows (the graphs compute the whole image)."""
    from .metadata import class_names
    task, wanted = graph.task, TASKS.get(cfg.get('default_scope'))
    if task != wanted:
        fix = ('export the detector or segmentor without --backbone-only' if task == 'backbone'
               else f'evaluate it with the config it was exported from '
                    f"({graph.metadata.get('config', 'named in its metadata')})")
        raise ExportError(f'graph {graph_path} is a {task} graph, but {config} is a {wanted} '
                          f'config: {fix}.')
    classes = list(class_names(cfg))
    exported = json.loads(graph.metadata.get('classes', '[]'))
    if classes and exported != classes:
        raise ExportError(
            f'graph {graph_path} predicts {len(exported)} classes ({", ".join(exported[:4])}'
            f'{", ..." if len(exported) > 4 else ""}), {config} has {len(classes)} '
            f'({", ".join(classes[:4])}{", ..." if len(classes) > 4 else ""}): evaluate the '
            f"graph with the config it was exported from ({graph.metadata.get('config', '?')}).")
    if task == 'segmentation':
        mode = (cfg.model.get('test_cfg') or {}).get('mode', 'whole')
        if mode != 'whole':
            raise ExportError(
                f'{config} tests with model.test_cfg.mode={mode}, the graph computes the whole '
                'image: add --cfg-options model.test_cfg.mode=whole (the numbers are then '
                "tools/test.py's with the same option).")
        return
    test_cfg = cfg.model.get('test_cfg') or {}
    for key, path in GRAPH_SETTINGS.items():
        ours, theirs = _setting(test_cfg, path), graph.metadata.get(key)
        if ours is None or theirs is None:
            continue
        if not np.isclose(float(ours), float(theirs)):
            option = 'model.test_cfg.' + '.'.join(path)
            raise ExportError(
                f'graph {graph_path} was exported with {option}={theirs}, {config} sets '
                f'{ours}: the graph holds its test-time settings, so its numbers would not be '
                f"the config's. Re-export with the config's settings, or evaluate with "
                f'--cfg-options {option}={theirs}.')


def graph_input(inputs: torch.Tensor) -> np.ndarray:
    """The pipeline's packed image (3, H, W) uint8, channels as loaded -> the graph's input
    (1, 3, H, W) float32 0-255 (unpadded: the graph pads as the data preprocessor would)."""
    return inputs.detach().cpu().numpy()[None].astype(np.float32)


def detection_sample(sample, out: Dict[str, np.ndarray], mask_thr: float):
    """``sample`` (the pipeline's ``DetDataSample``) with ``pred_instances`` as mmdet's
    ``predict(rescale=True)`` gives them: boxes in the original image's pixels, binary masks at
    the original size."""
    from mmengine.structures import InstanceData
    boxes = boxes_to_original(out['boxes'], sample.metainfo['scale_factor'])
    height, width = sample.metainfo['ori_shape'][:2]
    pred = InstanceData()
    pred.bboxes = torch.from_numpy(boxes)
    pred.scores = torch.from_numpy(out['scores'].astype(np.float32))
    pred.labels = torch.from_numpy(out['labels'].astype(np.int64))
    if 'masks' in out:
        pred.masks = torch.from_numpy(paste_masks(out['masks'], boxes, height, width,
                                                  threshold=mask_thr))
    sample.pred_instances = pred
    return sample


def segmentation_sample(sample, logits: np.ndarray, align_corners: bool, threshold: float):
    """``sample`` (the pipeline's ``SegDataSample``) with ``seg_logits`` and ``pred_sem_seg`` as
    mmseg's ``postprocess_result`` makes them from (1, C, H, W) logits at the input size."""
    from mmengine.structures import PixelData
    resized = logits_to_original(logits, sample.metainfo['ori_shape'], align_corners)
    if resized.shape[0] > 1:
        pred = resized.argmax(dim=0, keepdim=True)
    else:
        resized = resized.sigmoid()
        pred = (resized > threshold).to(resized)
    sample.set_data({'seg_logits': PixelData(data=resized), 'pred_sem_seg': PixelData(data=pred)})
    return sample


def _postprocess(cfg, graph: OnnxModel) -> Callable:
    """sample, graph outputs -> the host's data sample, with the config's own settings."""
    if graph.task == 'detection':
        rcnn = (cfg.model.get('test_cfg') or {}).get('rcnn') or {}
        mask_thr = float(rcnn.get('mask_thr_binary', graph.metadata.get('mask_thr_binary', 0.5)))
        return lambda sample, out: detection_sample(sample, out, mask_thr)
    head = cfg.model.get('decode_head') or {}
    align = bool(head.get('align_corners', False))
    threshold = head.get('threshold')
    threshold = 0.3 if threshold is None else float(threshold)  # mmseg's default for one channel
    return lambda sample, out: segmentation_sample(sample, out['seg_logits'], align, threshold)


def runtime_name(graph: OnnxModel) -> str:
    """onnxruntime's version, provider and threads, and the graph's precision."""
    import onnxruntime as ort
    options = graph.session.get_session_options()
    threads = options.intra_op_num_threads or 'default'
    precision = graph.metadata.get('quantization', 'fp32').split(':')[0]
    return (f'onnxruntime {ort.__version__}, {", ".join(graph.session.get_providers())}, '
            f'threads {threads}; graph precision {precision}')


def evaluate(cfg, graph: OnnxModel, log: Optional[Callable[[str], None]] = None) -> dict:
    """Score ``graph`` on ``cfg``'s test set with ``cfg``'s test evaluator (checked to fit with
    :func:`check_graph_fits` first); returns the evaluator's metrics. ``log`` gets progress
    lines (about ten a run), then the metrics line (:func:`metric_line`)."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    if hasattr(loader.dataset, 'metainfo'):
        evaluator.dataset_meta = loader.dataset.metainfo  # as mmengine's TestLoop
    postprocess = _postprocess(cfg, graph)
    every = max(1, len(loader) // 10)
    for step, batch in enumerate(loader, start=1):
        samples = [postprocess(sample, graph(graph_input(inputs)))
                   for inputs, sample in zip(batch['inputs'], batch['data_samples'])]
        evaluator.process(data_samples=samples, data_batch=batch)
        if log is not None and (step % every == 0 or step == len(loader)):
            log(f'onnx(test) [{step}/{len(loader)}]')
    metrics = evaluator.evaluate(len(loader.dataset))
    if log is not None:
        log(metric_line(metrics, len(loader)))
    return metrics


def plain(metrics: dict) -> dict:
    """The metrics with numpy numbers as Python numbers (mmseg's are numpy float32)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in metrics.items()}


def metric_line(metrics: dict, steps: int) -> str:
    """The metrics as mmengine's log prints them after a test run of ``steps`` batches (floats
    with 4 decimals)."""
    items = [f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
             for k, v in plain(metrics).items()]
    return f'onnx(test) [{steps}/{steps}]    ' + '  '.join(items)
