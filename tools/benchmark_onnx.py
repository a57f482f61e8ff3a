"""ONNX Runtime against our eager model: inference seconds per call, interleaved, medians.

    python tools/benchmark_onnx.py [--cases backbone toy-maskrcnn maskrcnn upernet]
        [--repeat 5] [--threads 2] [--det-shape 800 1216] [--work-dir /tmp/onnx_bench]
        [--quantize int8 int8-dynamic]

Cases (random weights; nothing is downloaded):
  backbone       ConvNeXt-T backbone (configs/maskrcnn_convnext_t_coco.py --backbone-only),
                 8x224x224
  toy-maskrcnn   configs/toy/maskrcnn_convnext_toy_coco.py, one 128x224 image
  maskrcnn       configs/maskrcnn_convnext_t_coco.py, one image of --det-shape
  upernet        configs/upernet/upernet_convnext_t_160k_ade20k.py, one 512x683 image (what
                 its test resize makes of a 4:3 photo; whole-image inference)
Both sides include the data preprocessing and the post-processing (detections with binary masks
at the input size: the ONNX side pastes the graph's 28x28 masks with
convnext_backbone.deploy.paste; seg logits at the input size). Eager = the mmdet/mmseg model's
own test_step on our backbone (its CPU fast path on); ONNX = tools/export.py's graph in an
onnxruntime CPU session.
--quantize adds the graphs quantized as tools/export.py --quantize does (a column each) and how
far their outputs are from the fp32 graph's on the timed input (max abs difference, seg argmax
agreement, detections). The static int8 graph is calibrated on 8 generated image files of
everyday sizes through the config's test pipeline (random weights: no val set is needed).
Prints a markdown table with the CPU model and ISA; see docs/deployment.md.
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

from convnext_backbone import cpu_isa
from convnext_backbone.deploy import OnnxModel, build_model, export_onnx, load_config, wrap
from convnext_backbone.deploy.calibration import calibration_inputs
from convnext_backbone.deploy.driver import task_of
from convnext_backbone.deploy.paste import paste_masks
from convnext_backbone.deploy.preprocess import min_input_size
from convnext_backbone.deploy.quantize import MODES, quantize_graph
from convnext_backbone.deploy.reference import eager_detections, eager_seg_logits
from convnext_backbone.deploy.verify import images_for, write_images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    'backbone': ('configs/maskrcnn_convnext_t_coco.py', True, (224, 224), 8),
    'toy-maskrcnn': ('configs/toy/maskrcnn_convnext_toy_coco.py', False, (128, 224), 1),
    'maskrcnn': ('configs/maskrcnn_convnext_t_coco.py', False, None, 1),
    'upernet': ('configs/upernet/upernet_convnext_t_160k_ade20k.py', False, (512, 683), 1),
}
# the UperNet T config's path before configs/ was split into folders
OLD_PATHS = {'configs/upernet/upernet_convnext_t_160k_ade20k.py':
             'configs/upernet_convnext_t_ade20k.py'}


def cpu_description() -> str:
    """The CPU for the report: model, vendor, ISA and the extensions onnxruntime's int8 kernels
    use (VNNI; AMX), from the CPU's flags (:mod:`convnext_backbone.cpu_isa`)."""
    info = cpu_isa.read_cpuinfo()
    return cpu_isa.describe_cpu(info._replace(model=info.model or platform.processor()))


def eager_runner(case, model, images):
    config, backbone_only = CASES[case][:2]
    if backbone_only:
        def run():
            with torch.no_grad():
                x = model.data_preprocessor(dict(inputs=list(images)))['inputs']
                return model.backbone(x)
        return run
    if model.__class__.__name__.endswith('EncoderDecoder'):
        model.test_cfg['mode'] = 'whole'  # what the graph computes
        return lambda: eager_seg_logits(model, images)
    return lambda: eager_detections(model, images)


def onnx_runner(graph, images):
    if graph.task != 'detection':
        return lambda: graph(images)

    def run():  # the graph, then its masks pasted at the input size as the eager side has them
        out = graph(images)
        out['masks'] = paste_masks(out['masks'], out['boxes'], *images.shape[2:])
        return out
    return run


def measure(case, args) -> dict:
    config, backbone_only, shape, batch = CASES[case]
    shape = tuple(args.det_shape) if shape is None else shape
    if not os.path.isfile(os.path.join(REPO, config)):
        config = OLD_PATHS.get(config, config)
    config = os.path.join(REPO, config)
    path = os.path.join(args.work_dir, f'{case}.onnx')
    cfg = load_config(config)
    model = build_model(cfg)  # random weights, shared by the graph and the eager side
    task = task_of(cfg, backbone_only)
    trace = shape if backbone_only else (min(shape[0], 256), min(shape[1], 256))
    start = time.perf_counter()
    export_onnx(wrap(model, task), task, path, trace, min_input_size(model))
    export_s = time.perf_counter() - start
    graph = OnnxModel(path, threads=args.threads)
    images = images_for(shape, batch=batch)
    runs = {'eager': eager_runner(case, model, images), 'onnxruntime': onnx_runner(graph, images)}
    differences = {}
    for mode in args.quantize:
        calibration = None
        if mode == 'int8':
            folder = os.path.join(args.work_dir, 'calibration')
            os.makedirs(folder, exist_ok=True)
            write_images(folder, CALIBRATION_SIZES)
            calibration = calibration_inputs(cfg, folder, len(CALIBRATION_SIZES))
        quantized = OnnxModel(quantize_graph(path, mode, calibration=calibration,
                                             calibration_source='generated images'),
                              threads=args.threads)
        runs[mode] = onnx_runner(quantized, images)
        differences[mode] = int8_difference(graph(images), quantized(images))
    times = {name: [] for name in runs}
    for name, run in runs.items():  # warm-up
        run()
    for _ in range(args.repeat):
        for name, run in runs.items():  # interleaved
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return dict(case=case, input=f'{batch}x3x{shape[0]}x{shape[1]}', export_s=export_s,
                differences=differences,
                **{name: statistics.median(t) for name, t in times.items()},
                spread={name: (min(t), max(t)) for name, t in times.items()})


# generated calibration images (H, W): COCO-like and ADE-like photos, portrait and landscape
CALIBRATION_SIZES = ((480, 640), (640, 480), (375, 500), (500, 375), (427, 640), (612, 612),
                     (333, 500), (512, 683))


def int8_difference(fp32: dict, int8: dict) -> str:
    """How far the int8 graph's outputs are from the fp32 graph's on the same input."""
    import numpy as np
    if 'seg_logits' in fp32:
        a, b = fp32['seg_logits'], int8['seg_logits']
        agree = float((a.argmax(1) == b.argmax(1)).mean())
        return (f'seg_logits max abs diff {float(np.abs(a - b).max()):.3g} (of max '
                f'{float(np.abs(a).max()):.3g}), argmax agreement {100 * agree:.2f}%')
    if 'boxes' in fp32:
        matched, score_diff = match_boxes(fp32, int8)
        return (f"detections {len(fp32['boxes'])} (fp32) vs {len(int8['boxes'])} (int8), "
                f'{matched} matched (same label, box IoU >= 0.9)' +
                (f', scores within {score_diff:.3g}' if matched else ''))
    parts = [f'{k} max abs diff {float(np.abs(fp32[k] - int8[k]).max()):.3g} (of '
             f'{float(np.abs(fp32[k]).max()):.3g})' for k in fp32]
    return ', '.join(parts)


def match_boxes(a: dict, b: dict, iou_min: float = 0.9):
    """How many detections of ``a`` have one in ``b`` of the same label with box IoU >=
    ``iou_min`` (greedy, in ``a``'s order), and the largest score difference among them."""
    import numpy as np
    used, diffs = set(), []
    for box, label, score in zip(a['boxes'], a['labels'], a['scores']):
        x1 = np.maximum(box[0], b['boxes'][:, 0])
        y1 = np.maximum(box[1], b['boxes'][:, 1])
        x2 = np.minimum(box[2], b['boxes'][:, 2])
        y2 = np.minimum(box[3], b['boxes'][:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
        iou = inter / np.maximum(area(box) + area(b['boxes']) - inter, 1e-9)
        for j in np.argsort(-iou):
            if iou[j] < iou_min:
                break
            if j not in used and b['labels'][j] == label:
                used.add(j)
                diffs.append(abs(float(score - b['scores'][j])))
                break
    return len(diffs), max(diffs, default=0.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', choices=list(CASES), default=list(CASES))
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--det-shape', type=int, nargs=2, default=(800, 1216), metavar=('H', 'W'))
    parser.add_argument('--work-dir', default='/tmp/onnx_bench')
    parser.add_argument('--quantize', nargs='+', choices=list(MODES), default=[],
                        help='also time these quantized graphs (tools/export.py --quantize)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    os.makedirs(args.work_dir, exist_ok=True)
    print(f'# {cpu_description()}; {args.threads} threads; torch {torch.__version__}; '
          f'onnxruntime {__import__("onnxruntime").__version__}; medians of {args.repeat} '
          f'interleaved runs after a warm-up; load average at start {load_average()}')
    heads = ''.join(f' {m} (s) | eager / {m} | {m} vs fp32 ORT outputs |' for m in args.quantize)
    print('| case | input | eager (s) | onnxruntime (s) | eager / ORT |' + heads)
    print('|---|---|---|---|---|' + '---|---|---|' * len(args.quantize))
    for case in args.cases:
        r = measure(case, args)
        cells = ''.join(f" {r[m]:.3f} | {r['eager'] / r[m]:.2f}x | {r['differences'][m]} |"
                        for m in args.quantize)
        print(f"| {r['case']} | {r['input']} | {r['eager']:.3f} | {r['onnxruntime']:.3f} | "
              f"{r['eager'] / r['onnxruntime']:.2f}x |{cells}", flush=True)
        print(f"  <!-- spread {r['spread']}, export {r['export_s']:.0f} s -->", file=sys.stderr)
    print(f'# load average at end {load_average()}')


def load_average() -> str:
    try:
        return '/'.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return 'unknown'


if __name__ == '__main__':
    from convnext_backbone.cli import run_tool
    run_tool(main)
