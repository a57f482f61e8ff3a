"""Export a model of a config to ONNX: the full detector / segmentor, or the backbone alone.

    python tools/export.py CONFIG CHECKPOINT --out FILE.onnx [--shape H W] [--backbone-only]
        [--static] [--cfg-options key=value ...] [--verify]

The graph takes one input, ``images``: (N, 3, H, W) float32, channels as loaded (BGR for
OpenCV), values 0-255; normalisation and channel swap happen inside. H and W are dynamic and
must be multiples of 32. Outputs: detection (N = 1) ``boxes`` (K, 4) xyxy, ``scores`` (K,),
``labels`` (K,) int64, ``masks`` (K, H, W) probabilities; segmentation ``seg_logits``
(N, C, H, W); backbone ``feat0..feat3``. --shape is the size traced at export (default 256 256).
--static fixes the input to (1, 3) + --shape. --out FILE.pt2 writes a torch.export program
instead (backbone and segmentors; same input and outputs). CHECKPOINT 'none' exports random weights.
--verify runs the graph in onnxruntime at another size and compares it with the eager model.
Any failure ends with one `error: ...` line that names the problem (--debug: the traceback).
See docs/deployment.md.
"""
import argparse

from mmengine.config import DictAction

from convnext_backbone.deploy import ExportError, export


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file (ours, or one that inherits ours)')
    parser.add_argument('checkpoint', help="checkpoint of that config (loaded strictly); 'none' "
                        'for random weights (speed tests)')
    parser.add_argument('--out', required=True,
                        help='the .onnx file to write (.pt2: a torch.export program instead; '
                        'backbone and segmentors)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='image size traced at export (multiples of 32; default 256 256)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the backbone (with the preprocessing) alone')
    parser.add_argument('--static', action='store_true',
                        help='fix the input to (1, 3, H, W) of --shape (default: H, W dynamic)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with the eager model at another input size')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    path = export(args.config, checkpoint, args.out, shape=args.shape,
                  backbone_only=args.backbone_only, cfg_options=args.cfg_options,
                  static=args.static)
    print(f'wrote {path}')
    if args.verify and path.endswith('.onnx'):
        from convnext_backbone.deploy.verify import verify
        print(verify(args.config, checkpoint, path, cfg_options=args.cfg_options))


if __name__ == '__main__':
    from convnext_backbone.cli import run_tool
    run_tool(main, extra_errors=(ExportError,))
