"""Inference speed of a config's model (the FPS the paper's tables report), on synthetic images.

    python tools/benchmark.py CONFIG [--shape H W] [--batch 1] [--iters 20] [--warmup 5]
        [--device cpu|cuda] [--threads N] [--checkpoint PATH] [--config-score-thr]
        [--cfg-options k=v ...]

Builds the detector/segmentor (random weights unless --checkpoint), feeds it random images of
the given size through its data preprocessor and ``predict``, and prints images per second with
the median and spread of the per-batch times, and the median CPU time of the process per batch
(all threads: on a machine others load, CPU time / threads is near what a quiet machine's wall
time would be). No dataset is needed.

The work per image is test time's: a segmentor runs its configured inference (``slide``: the
crop windows the image size needs, printed); a detector's box heads keep every detection up to
``max_per_img`` (score threshold 0, printed), because random weights score below the config's
threshold and would skip the mask head and the mask pasting that a trained model runs on a busy
COCO image. ``--config-score-thr`` keeps the config's threshold. Shapes are the test pipeline's
output, e.g. 800 1333 for COCO's largest (1333x800) and 512 2048 / 640 2560 for ADE20K's
(2048x512 / 2560x640 resize scales).
"""
import argparse
import statistics
import time

import torch
from mmengine.registry import MODELS, init_default_scope

import convnext_backbone  # noqa: F401  (registers our modules)
from convnext_backbone.cli import arguments, config, run_tool
from convnext_backbone.engine.model_fit import check_model_fits


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_config(parser)
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1280], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--checkpoint', help='weights to load (speed does not depend on them)')
    parser.add_argument('--config-score-thr', action='store_true',
                        help="keep the config's detection score threshold (default: 0, every "
                        'image yields max_per_img detections)')
    return parser.parse_args(argv)


def keep_every_detection(cfg) -> None:
    """Score threshold 0 in the detector's box heads: ``max_per_img`` detections per image."""
    rcnn = cfg.model.get('test_cfg', {}).get('rcnn')
    if rcnn is not None and 'score_thr' in rcnn:
        rcnn.score_thr = 0.0


def work_per_image(cfg, outputs, height: int, width: int) -> str:
    """What one image cost: detections kept, or the segmentor's windows."""
    if cfg.get('default_scope') == 'mmdet':
        counts = sorted({len(o.pred_instances) for o in outputs})
        return f'{"/".join(map(str, counts))} detections'
    test_cfg = cfg.model.get('test_cfg', {})
    if test_cfg.get('mode') != 'slide':
        return 'whole image'
    (crop_h, crop_w), (stride_h, stride_w) = test_cfg.crop_size, test_cfg.stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    return f'{rows * cols} windows of {crop_h}x{crop_w}'



def synthetic_batch(scope: str, batch: int, height: int, width: int):
    """Random uint8 images and the data samples ``predict`` needs, for mmdet or mmseg."""
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                scale_factor=(1.0, 1.0), batch_input_shape=(height, width))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    images = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8) for _ in range(batch)]
    return dict(inputs=images, data_samples=[Sample(metainfo=meta) for _ in range(batch)])


def build_model(cfg, checkpoint, device):
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    check_model_fits(model)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model.to(device).eval()


def main(argv=None):
    args = parse_args(argv)
    config.flush_denormals()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config.load_config(args.config, args.cfg_options)
    if not args.config_score_thr:
        keep_every_detection(cfg)
    model = build_model(cfg, args.checkpoint, args.device)
    data = synthetic_batch(cfg.get('default_scope', 'mmdet'), args.batch, *args.shape)
    times, cpu_times = [], []
    with torch.no_grad():
        for step in range(args.warmup + args.iters):
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs = model.test_step(data)
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
    median = statistics.median(times)
    spread = (max(times) - min(times)) / median if median else 0.0
    work = work_per_image(cfg, outputs, *args.shape)
    rate = args.batch / median
    rate_text = f'{rate:.2f}' if rate >= 1 else f'{rate:.4f}'  # 0.004 img/s, not 0.00
    cpu = statistics.median(cpu_times)
    print(f'| config | device | threads | batch | shape | work per image | median s/batch | '
          f'spread | img/s | CPU s/batch |\n'
          f'|---|---|---|---|---|---|---|---|---|---|\n'
          f'| {args.config} | {args.device} | {torch.get_num_threads()} | {args.batch} | '
          f'{args.shape[0]}x{args.shape[1]} | {work} | {median:.3f} | {spread:.0%} | '
          f'{rate_text} | {cpu:.3f} |')


if __name__ == '__main__':
    run_tool(main)
