"""Export a model of a config to ONNX: the full detector / segmentor, or the backbone alone.

    python tools/export.py CONFIG CHECKPOINT --out FILE.onnx [--shape H W] [--backbone-only]
        [--static] [--cfg-options key=value ...] [--verify] [--verify-image PATH ...]
        [--quantize int8]

The graph takes one input, ``images``: (N, 3, H, W) float32, channels as loaded (BGR for
OpenCV), values 0-255, the image as the config's test pipeline resized it, unpadded, any H and
W; channel swap, normalisation and the padding of the model's data preprocessor happen inside.
Outputs: detection (N = 1) ``boxes`` (K, 4) xyxy in input pixels, ``scores`` (K,), ``labels``
(K,) int64, ``masks`` (K, 28, 28) probabilities in each box (paste them as in
docs/deployment.md); segmentation ``seg_logits`` (N, C, H, W); backbone ``feat0..feat3``.
The metadata holds the class names, how the file is decoded (EXIF, BGR, 16 bits: one
`note:` line at export), the resize rule and the test-time thresholds.
--shape is the size traced at export (default 256 256). --static fixes the input to
(1, 3) + --shape. --out FILE.pt2 writes a torch.export program instead (backbone and
segmentors; H and W multiples of 32). CHECKPOINT 'none' exports random weights.
--verify compares the graph in onnxruntime with mmdet's inference_detector / mmseg's
inference_model on generated image files of everyday sizes; --verify-image PATH on yours.
--quantize int8 also writes FILE.int8.onnx next to --out: onnxruntime's dynamic quantization of
the MatMul weights (int8), the same inputs, outputs and metadata (convnext_backbone/deploy/
quantize.py; its results differ slightly from the fp32 graph's, see docs/deployment.md).
Configs that test with sliding windows are refused: add --cfg-options model.test_cfg.mode=whole.
Any failure ends with one `error: ...` line that names the problem (--debug: the traceback).
See docs/deployment.md.
"""
import argparse
import os

from mmengine.config import DictAction

from convnext_backbone.deploy import ExportError, export
from convnext_backbone.deploy.quantize import check_quantize, quantize_graph


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file (ours, or one that inherits ours)')
    parser.add_argument('checkpoint', help="checkpoint of that config (loaded strictly); 'none' "
                        'for random weights (speed tests)')
    parser.add_argument('--out', required=True,
                        help='the .onnx file to write (.pt2: a torch.export program instead; '
                        'backbone and segmentors)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='image size traced at export (default 256 256; the graph takes '
                        'any size afterwards)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the backbone (with the preprocessing) alone')
    parser.add_argument('--static', action='store_true',
                        help='fix the input to (1, 3, H, W) of --shape (default: H, W dynamic)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE')
    parser.add_argument('--verify', action='store_true',
                        help="compare onnxruntime with the host's inference on generated image "
                        'files (375x500, 500x375, 150x227, 33x47)')
    parser.add_argument('--verify-image', nargs='+', metavar='PATH',
                        help="compare onnxruntime with the host's inference on these image files")
    parser.add_argument('--quantize', metavar='int8',
                        help='also write an int8 graph FILE.int8.onnx (onnxruntime dynamic '
                        'quantization of the MatMul weights) next to --out')
    return parser.parse_args(argv)


def check_verify_args(args):
    """Refuse a verification that cannot run, before the (long) export."""
    if not (args.verify or args.verify_image):
        return
    if not args.out.endswith('.onnx'):
        raise ExportError(f'--verify compares ONNX graphs in onnxruntime, not {args.out}: '
                          'export to FILE.onnx to verify.')
    for image in args.verify_image or ():
        if not os.path.isfile(image):
            raise ExportError(f'--verify-image {image} does not exist: give the path of an '
                              'image file.')


def report_lines(report: dict):
    """One line per image, a line on mask threshold ties if there are any, then the verdict."""
    for image, result in report['images'].items():
        yield f'{image}: {result}'
    ties = sum(r.get('mask_ties', 0) for r in report['images'].values())
    if ties:
        worst = min(r['mask_iou_min'] for r in report['images'].values())
        yield (f'masks: {ties} pixel(s) binarised differently where the mask probability is '
               'within 1e-4 of mask_thr_binary (plus what the box difference moves it): '
               'threshold ties of float rounding (untrained mask heads sit near 0.5), not '
               f'counted in mask_iou_min_decided; mask IoU counting them: {worst:.3f}')
    yield f"verify: {'graph equals' if report['ok'] else 'graph DIFFERS from'} the host"


def main(argv=None):
    args = parse_args(argv)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    check_verify_args(args)
    if args.quantize:
        check_quantize(args.quantize, args.out)
    notes = []
    path = export(args.config, checkpoint, args.out, shape=args.shape,
                  backbone_only=args.backbone_only, cfg_options=args.cfg_options,
                  static=args.static, notes=notes)
    print(f'wrote {path}')
    if args.quantize:
        print(f'wrote {quantize_graph(path, args.quantize)}')
    for note in notes:
        print(f'note: {note}')
    if args.verify or args.verify_image:
        from convnext_backbone.deploy.verify import verify
        report = verify(args.config, checkpoint, path, cfg_options=args.cfg_options,
                        image_paths=args.verify_image)
        for line in report_lines(report):
            print(line)
        if not report['ok']:
            failed = [name for name, r in report['images'].items() if not r['ok']]
            raise ExportError(f'the graph {path} differs from the host on {", ".join(failed)} '
                              '(figures above); report it with the config and the image.')


if __name__ == '__main__':
    from convnext_backbone.cli import run_tool
    run_tool(main, extra_errors=(ExportError,))
