"""Export a model of a config to ONNX: the full detector / segmentor, or the backbone alone.

    python tools/export.py CONFIG CHECKPOINT --out FILE.onnx [--shape H W] [--backbone-only]
        [--static] [--cfg-options key=value ...] [--verify] [--verify-image PATH ...]
        [--quantize int8|int8-dynamic] [--calib-dir FOLDER] [--calib-images N] [--reference DIR]

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
--quantize int8 also writes FILE.int8.onnx next to --out: onnxruntime's static quantization of
the Conv/MatMul/Gemm layers, calibrated on --calib-images (16) images spread over the config's
val set, or over --calib-dir FOLDER; int8-dynamic (FILE.int8-dynamic.onnx) quantizes the MatMul
weights only and needs no image. Same inputs, outputs and metadata (convnext_backbone/deploy/
quantize.py; its results differ from the fp32 graph's, see docs/deployment.md).
--reference DIR writes a reference pair for checking a port of the graph (another language or
runtime): an image file (the first --verify-image, else one of the config's val set), the
graph's input and outputs on it as .npy files, the metadata as JSON and a manifest
(reference.json: sizes, shapes, dtypes, tolerances); see docs/deployment.md, "Porting".
Configs that test with sliding windows are refused: add --cfg-options model.test_cfg.mode=whole.
Any failure ends with one `error: ...` line that names the problem (--debug: the traceback).
See docs/deployment.md.
"""
import argparse
import os

from mmengine.config import DictAction

from convnext_backbone.deploy import ExportError, export
from convnext_backbone.deploy.calibration import DEFAULT_COUNT, calibration_inputs
from convnext_backbone.deploy.quantize import check_quantize, quantize_graph, quantized_path


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
    parser.add_argument('--quantize', metavar='MODE',
                        help='also write an int8 graph next to --out: int8 (FILE.int8.onnx, '
                        'static, calibrated on images) or int8-dynamic (FILE.int8-dynamic.onnx, '
                        'MatMul weights only, no calibration)')
    parser.add_argument('--calib-dir', metavar='FOLDER',
                        help="--quantize int8: calibrate on this folder's images instead of the "
                        "config's val set")
    parser.add_argument('--reference', metavar='DIR',
                        help='write a reference pair into DIR: an image file (the first '
                        "--verify-image, else one of the config's val set) and the graph's "
                        'input and outputs on it (.npy), with a manifest, to check a port of '
                        'the graph against')
    parser.add_argument('--calib-images', type=int, default=DEFAULT_COUNT, metavar='N',
                        help=f'--quantize int8: how many calibration images, spread over the '
                        f'set (default {DEFAULT_COUNT})')
    return parser.parse_args(argv)


def check_verify_args(args):
    """Refuse a verification or a reference pair that cannot be made, before the (long)
    export."""
    if not (args.verify or args.verify_image or args.reference):
        return
    if not args.out.endswith('.onnx'):
        if args.verify or args.verify_image:
            raise ExportError(f'--verify compares ONNX graphs in onnxruntime, not {args.out}: '
                              'export to FILE.onnx to verify.')
        raise ExportError(f'--reference records an ONNX graph run in onnxruntime, not '
                          f'{args.out}: export to FILE.onnx for a reference pair.')
    if args.reference and os.path.isfile(args.reference):
        raise ExportError(f'--reference {args.reference} is a file: give a folder (it is '
                          'created) for the image and the arrays.')
    for image in args.verify_image or ():
        if not os.path.isfile(image):
            raise ExportError(f'--verify-image {image} does not exist: give the path of an '
                              'image file.')


def prepare_calibration(args):
    """Check ``--quantize`` and read its calibration images, before the (long) export: the
    graph's inputs for ``int8``, None otherwise."""
    if not args.quantize:
        if args.calib_dir:
            raise ExportError('--calib-dir calibrates an int8 graph: add --quantize int8.')
        return None
    check_quantize(args.quantize, args.out)
    if args.quantize != 'int8':
        if args.calib_dir:
            raise ExportError(f'--quantize {args.quantize} needs no calibration, so --calib-dir '
                              'would be ignored: drop it, or use --quantize int8.')
        return None
    if args.calib_images < 1:
        raise ExportError(f'--calib-images {args.calib_images}: give at least 1 (default '
                          f'{DEFAULT_COUNT}).')
    from convnext_backbone.deploy import load_config
    cfg = load_config(args.config, args.cfg_options)
    return calibration_inputs(cfg, args.calib_dir, args.calib_images)


def prepare_reference(args):
    """``--reference``: the config and the image of the pair, found before the (long) export;
    None without the option."""
    if not args.reference:
        return None
    from convnext_backbone.deploy import load_config
    from convnext_backbone.deploy.reference_pair import reference_image
    cfg = load_config(args.config, args.cfg_options)
    return cfg, reference_image(cfg, (args.verify_image or [None])[0])


def wrote(path: str, earlier: set) -> str:
    """``wrote PATH``, saying so when it replaced a file that was there before the run."""
    return f'wrote {path}' + (' (replacing the file that was there)' if path in earlier else '')


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
    calibration = prepare_calibration(args)
    reference = prepare_reference(args)
    earlier = {p for p in (args.out, args.quantize and quantized_path(args.out, args.quantize))
               if p and os.path.exists(p)}  # replaced only once the new file is complete
    notes = []
    path = export(args.config, checkpoint, args.out, shape=args.shape,
                  backbone_only=args.backbone_only, cfg_options=args.cfg_options,
                  static=args.static, notes=notes)
    print(wrote(path, earlier))
    if args.quantize:
        source = args.calib_dir or "the config's val set"
        written = quantize_graph(path, args.quantize, calibration=calibration,
                                 calibration_source=source)
        print(wrote(written, earlier))
        if calibration:  # where int8 departs from fp32, on the first calibration image
            from convnext_backbone.deploy.quant_report import layer_sqnr, summary
            print(summary(layer_sqnr(path, written, calibration[0])))
    for note in notes:
        print(f'note: {note}')
    if reference:
        from convnext_backbone.deploy.reference_pair import write_reference
        cfg, image = reference
        manifest = write_reference(path, cfg, image, args.reference)
        size = manifest['input_size']
        print(f"wrote the reference pair into {args.reference}: {os.path.basename(image)} "
              f"as {manifest['image']}, input {size['height']}x{size['width']}, outputs "
              f"{', '.join(manifest['outputs'])} (reference.json"
              f"{'; it replaces the pair that was there' if manifest['replaced'] else ''})")
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
