"""Compare an exported graph in onnxruntime with the eager model on the same input.

Used by ``tools/export.py --verify`` and the tests: detections must agree in count, labels, box
coordinates and masks (IoU of the binary masks, thresholded as mmdet does); seg logits and
backbone features elementwise.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .driver import build_model, load_config, load_weights
from .preprocess import size_divisor
from .reference import eager_detections, eager_seg_logits
from .runtime import OnnxModel


def compare_detections(onnx_out: Dict[str, np.ndarray], eager: Dict[str, torch.Tensor],
                       mask_thr: float = 0.5, top: int = 20) -> dict:
    """count_onnx/count_eager, labels_equal, box_diff (max over the ``top`` best, px),
    score_diff, mask_iou_min (binary masks of the ``top`` best)."""
    n_onnx, n_eager = len(onnx_out['scores']), len(eager['scores'])
    report = dict(count_onnx=n_onnx, count_eager=n_eager)
    n = min(n_onnx, n_eager, top)
    boxes = torch.from_numpy(onnx_out['boxes'][:n])
    report['labels_equal'] = bool(np.array_equal(onnx_out['labels'][:n],
                                                 eager['labels'][:n].numpy()))
    report['box_diff'] = float((boxes - eager['boxes'][:n]).abs().max()) if n else 0.0
    report['score_diff'] = float(np.abs(onnx_out['scores'][:n] -
                                        eager['scores'][:n].numpy()).max()) if n else 0.0
    ious = []
    for i in range(n):
        a = torch.from_numpy(onnx_out['masks'][i] >= mask_thr)
        b = eager['masks'][i].bool()
        union = (a | b).sum().item()
        ious.append(1.0 if union == 0 else (a & b).sum().item() / union)
    report['mask_iou_min'] = min(ious) if ious else 1.0
    return report


def images_for(shape: Sequence[int], batch: int = 1, seed: int = 1) -> torch.Tensor:
    """A reproducible random image batch, values 0-255 (what a loaded image holds)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, *shape, generator=generator) * 255


def verify(config: str, checkpoint: Optional[str], onnx_path: str,
           shape: Optional[Sequence[int]] = None, cfg_options: Optional[dict] = None,
           images: Optional[torch.Tensor] = None) -> dict:
    """Run ``onnx_path`` and the eager model on the same images and report the differences."""
    cfg = load_config(config, cfg_options)
    graph = OnnxModel(onnx_path)
    model = build_model(cfg)
    if checkpoint is not None:
        load_weights(model, checkpoint, config)
    static = graph.metadata.get('static_shape')
    if images is None and static:
        shape = tuple(int(v) for v in static.split())[2:]
    if images is None:
        divisor = size_divisor(model)
        shape = shape or (3 * divisor, 5 * divisor)
        images = images_for(shape, batch=1 if graph.task == 'detection' or static else 2)
    task = graph.task
    out = graph(images)
    if task == 'detection':
        report = compare_detections(out, eager_detections(model, images),
                                    float(graph.metadata.get('mask_thr_binary', 0.5)))
    elif task == 'segmentation':
        logits = eager_seg_logits(model, images)
        report = dict(max_abs_diff=float(np.abs(out['seg_logits'] - logits.numpy()).max()))
    else:
        with torch.no_grad():
            feats = model.backbone(model.data_preprocessor(dict(inputs=list(images)))['inputs'])
        report = dict(max_abs_diff=max(float(np.abs(out[name] - feat.numpy()).max())
                                       for name, feat in zip(graph.output_names, feats)))
    report.update(task=task, shape=tuple(images.shape[2:]))
    return report
