"""Inference speed of a config's model (the FPS the paper's tables report), on synthetic images.

    python tools/benchmark.py CONFIG [--shape H W] [--batch 1] [--iters 20] [--warmup 5]
        [--device cpu|cuda] [--threads N] [--checkpoint PATH] [--cfg-options k=v ...]

Builds the detector/segmentor (random weights unless --checkpoint), feeds it random images of
the given size through its data preprocessor and ``predict``, and prints images per second with
the median and spread of the per-batch times. No dataset is needed.
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
    return parser.parse_args(argv)


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
    model = build_model(cfg, args.checkpoint, args.device)
    data = synthetic_batch(cfg.get('default_scope', 'mmdet'), args.batch, *args.shape)
    times = []
    with torch.no_grad():
        for step in range(args.warmup + args.iters):
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.test_step(data)
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    spread = (max(times) - min(times)) / median if median else 0.0
    print(f'| config | device | threads | batch | shape | median s/batch | spread | img/s |\n'
          f'|---|---|---|---|---|---|---|---|\n'
          f'| {args.config} | {args.device} | {torch.get_num_threads()} | {args.batch} | '
          f'{args.shape[0]}x{args.shape[1]} | {median:.3f} | {spread:.0%} | '
          f'{args.batch / median:.2f} |')


if __name__ == '__main__':
    run_tool(main)
