"""Compare an exported graph in onnxruntime with the host's own inference on image files.

Used by ``tools/export.py --verify`` / ``--verify-image`` and the tests. For each image file:

* the graph's input is what the config's own test pipeline makes of the file up to (and
  including) its resize: the image as loaded and resized, unpadded;
* the host's result is mmdet's ``inference_detector`` / mmseg's ``inference_model`` on the same
  file (the whole test pipeline, the data preprocessor, the model, the rescale to the image);
* the graph's output is brought to the original image as the host does: boxes divided by the
  resize's scale factor, RoI masks pasted at the original size (:mod:`.paste`), seg logits
  resized bilinearly to the original size.

Acceptance (:data:`LIMITS`): the same number of detections, each matched to a host detection of
the same label (rank by rank, up to the order of near-equal scores), boxes within 0.05 px,
scores within 1e-4, binary masks IoU >= 0.99 not counting threshold ties (below); seg logits
within 1e-3, argmax agreement >= 99.9%.

Threshold ties: a mask pixel the two sides binarise differently although the graph's pasted
probability is within ``mask_tie`` (1e-4) of ``mask_thr_binary``, plus what the detection's box
difference (within ``box_diff``) moves that pixel's probability, is a tie of float rounding, not
a difference of the graph. Untrained mask heads put whole masks near 0.5 (random weights: every
probability below about 0.62), so their masks of a few pixels in a small image can lose one
pixel to a tie (IoU 0.5 for a 2-pixel mask). The report gives the IoU as a user sees it
(``mask_iou_min``), the number of tied pixels (``mask_ties``) and the IoU with ties counted as
agreeing (``mask_iou_min_decided``), which the acceptance uses.

Without image files, :func:`write_images` writes generated ones of everyday sizes that need
padding after the resize.
"""
import os
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .driver import build_model, load_config, load_weights
from .errors import ExportError
from .metadata import test_pipeline
from .paste import paste_window
from .runtime import OnnxModel
from .to_original import boxes_to_original, logits_to_original

# (height, width) of image files as cameras and datasets give them (COCO-like, small and odd);
# after the toy and the COCO test resizes all of them need padding to a multiple of 32.
SIZES = ((375, 500), (500, 375), (150, 227), (33, 47))
LIMITS = dict(box_diff=0.05, score_diff=1e-4, mask_iou_min=0.99, mask_tie=1e-4,
              max_abs_diff=1e-3, argmax_agreement=0.999)


def write_images(folder: str, sizes: Sequence[Sequence[int]] = SIZES, seed: int = 0,
                 suffix: str = '.jpg') -> List[str]:
    """Image files of ``sizes`` (H, W) in ``folder``: filled shapes of random colours on a
    smooth background, like a photo of a few objects; returns their paths."""
    import cv2
    rng = np.random.default_rng(seed)
    paths = []
    for height, width in sizes:
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        base = rng.uniform(40, 200, 3)
        image = (base + 40 * np.sin(xs[..., None] / max(width, 1) * 3 + ys[..., None] /
                                    max(height, 1) * 2 + rng.uniform(0, 6, 3)))
        image = image.astype(np.uint8)
        for _ in range(3):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
            rx, ry = (int(rng.integers(max(s // 8, 1), max(s // 3, 2))) for s in (width, height))
            if rng.random() < 0.5:
                cv2.rectangle(image, (cx - rx, cy - ry), (cx + rx, cy + ry), colour, -1)
            else:
                cv2.ellipse(image, (cx, cy), (rx, ry), 0, 0, 360, colour, -1)
        path = os.path.join(folder, f'image_{height}x{width}{suffix}')
        cv2.imwrite(path, image)
        paths.append(path)
    return paths


def graph_input(cfg, path: str) -> dict:
    """The config's test pipeline on ``path`` up to its resize: ``images`` (1, 3, H, W) float32,
    ``scale_factor`` (w, h), ``ori_shape`` (H0, W0)."""
    from mmcv.transforms import Compose
    steps = test_pipeline(cfg)
    resize_at = [i for i, step in enumerate(steps)
                 if str(step.get('type', '')).split('.')[-1] == 'Resize']
    steps = steps[:resize_at[0] + 1] if resize_at else steps[:1]
    results = Compose(steps)(dict(img_path=path, img_id=0))
    image = results['img']
    if image.ndim == 2:
        image = image[..., None].repeat(3, axis=2)
    images = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()
    return dict(images=images, scale_factor=tuple(results.get('scale_factor', (1.0, 1.0))),
                ori_shape=tuple(results['ori_shape']))


def match_detections(out: Dict[str, np.ndarray], boxes: np.ndarray, host,
                     score_tol: float) -> List[tuple]:
    """Pairs (graph index, host index): each graph detection with the unused host detection of
    the same label, a score within ``score_tol`` and the nearest box. Rank by rank would do
    for distinct scores; detections whose scores tie within float noise (random-weight
    cascades score many alike) may come in either order on the two sides."""
    host_boxes, host_labels = host.bboxes.numpy(), host.labels.numpy()
    host_scores, used, pairs = host.scores.numpy(), set(), []
    for i, (box, label, score) in enumerate(zip(boxes, out['labels'], out['scores'])):
        candidates = [j for j in np.nonzero((host_labels == label) &
                                            (np.abs(host_scores - score) <= score_tol))[0]
                      if j not in used]
        if candidates:
            j = min(candidates, key=lambda j: np.abs(host_boxes[j] - box).max())
            used.add(j)
            pairs.append((i, j))
    return pairs


def compare_detections(out: Dict[str, np.ndarray], host, scale_factor, ori_shape,
                       mask_thr: float = 0.5, limits: Optional[dict] = None) -> dict:
    """Graph detections (input pixels, RoI masks) against mmdet's ``pred_instances``, matched
    by :func:`match_detections`."""
    limits = {**LIMITS, **(limits or {})}
    n_graph, n_host = len(out['scores']), len(host.scores)
    report = dict(count_graph=n_graph, count_host=n_host)
    boxes = boxes_to_original(out['boxes'], scale_factor)
    pairs = match_detections(out, boxes, host, limits['score_diff'])
    mine, theirs = [i for i, _ in pairs], [j for _, j in pairs]
    report['unmatched'] = n_graph - len(pairs)
    report['labels_equal'] = n_graph == n_host == len(pairs)
    report['box_diff'] = float(np.abs(boxes[mine] - host.bboxes[theirs].numpy()).max()) \
        if pairs else 0.
    report['score_diff'] = float(np.abs(out['scores'][mine] - host.scores[theirs].numpy()).max()) \
        if pairs else 0.
    ious = [mask_agreement(out['masks'][i], boxes[i], host.bboxes[j].numpy(),
                           host.masks[j].numpy().astype(bool), mask_thr, limits['mask_tie'])
            for i, j in pairs]
    report['mask_iou_min'] = min((a for a, _, _ in ious), default=1.0)
    report['mask_iou_min_decided'] = min((d for _, d, _ in ious), default=1.0)
    report['mask_ties'] = sum(t for _, _, t in ious)
    report['ok'] = (n_graph == n_host and report['labels_equal'] and
                    report['box_diff'] <= limits['box_diff'] and
                    report['score_diff'] <= limits['score_diff'] and
                    report['mask_iou_min_decided'] >= limits['mask_iou_min'])
    return report


def mask_agreement(mask: np.ndarray, box, host_box, host_mask: np.ndarray, threshold: float,
                   tie: float) -> tuple:
    """One detection's graph mask (RoI probabilities, pasted into ``box``) against the host's
    binary mask (pasted by mmdet into ``host_box``): ``(iou, iou_decided, ties)``.

    A differing pixel is a tie when the graph's probability p is within ``tie`` + |p - p'| of
    ``threshold``, p' being the same RoI mask pasted into the host's box: float rounding of the
    mask head, plus what the (accepted) box difference moves the pixel. ``iou_decided`` counts
    ties as agreeing. Only the two boxes' pixel windows are looked at (mmdet pastes nowhere
    else), so a 4000x3000 image costs no full-size float arrays."""
    height, width = host_mask.shape
    (t0, l0, ours), (t1, l1, shifted) = (paste_window(mask, b, height, width)
                                         for b in (box, host_box))
    top, left = min(t0, t1), min(l0, l1)
    bottom = max(t0 + ours.shape[0], t1 + shifted.shape[0])
    right = max(l0 + ours.shape[1], l1 + shifted.shape[1])

    def placed(row, col, values):
        window = np.zeros((max(bottom - top, 0), max(right - left, 0)), np.float32)
        row, col = row - top, col - left
        window[row:row + values.shape[0], col:col + values.shape[1]] = values
        return window

    prob, prob_at_host_box = placed(t0, l0, ours), placed(t1, l1, shifted)
    theirs = host_mask[top:bottom, left:right]
    outside = int(host_mask.sum()) - int(theirs.sum())  # host pixels beyond both windows
    mine = prob >= threshold
    ties = (mine != theirs) & (np.abs(prob - threshold) <=
                               tie + np.abs(prob - prob_at_host_box))

    def iou(binary: np.ndarray) -> float:
        union = int((binary | theirs).sum()) + outside
        return 1.0 if union == 0 else float((binary & theirs).sum() / union)

    return iou(mine), iou(np.where(ties, theirs, mine)), int(ties.sum())


def compare_seg(logits: np.ndarray, host, ori_shape, align_corners: bool,
                limits: Optional[dict] = None) -> dict:
    """Graph seg logits (input size) resized as mmseg resizes them, against its result."""
    limits = {**LIMITS, **(limits or {})}
    resized = logits_to_original(logits, ori_shape, align_corners)
    theirs = host.seg_logits.data
    agreement = float((class_argmax(resized) == class_argmax(theirs)).float().mean())
    report = dict(max_abs_diff=float((resized - theirs).abs().max()),
                  argmax_agreement=agreement)
    report['ok'] = (report['max_abs_diff'] <= limits['max_abs_diff'] and
                    agreement >= limits['argmax_agreement'])
    return report


def class_argmax(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(0)`` of (C, H, W) logits (the first of equal maxima), one class at a time:
    torch's argmax over the first axis is strided and takes seconds on a 4000x3000 image."""
    best, index = logits[0].clone(), torch.zeros(logits.shape[1:], dtype=torch.int64)
    for c in range(1, logits.shape[0]):
        better = logits[c] > best
        best = torch.where(better, logits[c], best)
        index[better] = c
    return index


def host_inference(model, path: str):
    """The host's own inference API on an image file."""
    if model.cfg.default_scope == 'mmdet':
        from mmdet.apis import inference_detector
        return inference_detector(model, path).pred_instances
    from mmseg.apis import inference_model
    return inference_model(model, path)


def verify(config: str, checkpoint: Optional[str], onnx_path: str,
           cfg_options: Optional[dict] = None, image_paths: Optional[Sequence[str]] = None,
           model=None, limits: Optional[dict] = None) -> dict:
    """Run ``onnx_path`` per the contract and the host's inference on the same image files;
    returns ``{'images': {path: report}, 'ok': all agree}``. ``model`` (built from the same
    config and weights) saves building it again; ``limits`` overrides :data:`LIMITS`."""
    graph = OnnxModel(onnx_path)
    cfg = load_config(config, cfg_options)
    if model is None:
        model = build_model(cfg)
        if checkpoint is not None:
            load_weights(model, checkpoint, config)
    model.cfg = cfg  # what the host's inference APIs read their test pipeline from
    with tempfile.TemporaryDirectory() as folder:
        paths = list(image_paths) if image_paths else write_images(folder)
        for path in paths:
            if not os.path.isfile(path):
                raise ExportError(f'--verify-image {path} does not exist: give the path of an '
                                  'image file.')
        reports = {path: _verify_one(graph, model, cfg, path, limits) for path in paths}
        if not image_paths:
            reports = {os.path.basename(p): r for p, r in reports.items()}
    return dict(task=graph.task, ok=all(r['ok'] for r in reports.values()), images=reports)


def _verify_one(graph: OnnxModel, model, cfg, path: str, limits: Optional[dict]) -> dict:
    try:
        data = graph_input(cfg, path)
    except Exception as exc:  # unreadable files and the like: the pipeline's own message
        raise ExportError(f'image {path} could not be read by the test pipeline '
                          f'({type(exc).__name__}: {str(exc).strip()[:200]}): give an image '
                          'file (JPEG, PNG, ...).') from None
    images = data['images']
    out = graph(images)
    base = dict(input=tuple(images.shape[2:]), original=data['ori_shape'])
    if graph.task == 'detection':
        host = host_inference(model, path)
        mask_thr = float(graph.metadata.get('mask_thr_binary', 0.5))
        return {**base, **compare_detections(out, host, data['scale_factor'],
                                             data['ori_shape'], mask_thr, limits)}
    if graph.task == 'segmentation':
        align = graph.metadata.get('align_corners', 'false') == 'true'
        return {**base, **compare_seg(out['seg_logits'], host_inference(model, path),
                                      data['ori_shape'], align, limits)}
    with torch.no_grad():  # backbone: features of the preprocessed (padded) image
        feats = model.backbone(model.data_preprocessor(dict(inputs=list(images)))['inputs'])
    diff = max(float(np.abs(out[name] - feat.numpy()).max())
               for name, feat in zip(graph.output_names, feats))
    return {**base, 'max_abs_diff': diff, 'ok': diff <= 1e-3}


def images_for(shape: Sequence[int], batch: int = 1, seed: int = 1) -> torch.Tensor:
    """A reproducible random image batch, values 0-255 (timing inputs of the benchmarks)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, *shape, generator=generator) * 255
