"""Convert a ConvNeXt checkpoint (official / timm / mmpretrain / FCMAE / detector) to our naming.

    python tools/convert_checkpoint.py SRC DST [--arch v1-tiny] [--format auto] [--key model_ema]

DST ending in ``.safetensors`` is written as safetensors, anything else as a torch file holding
``{'state_dict': ...}``; both load with ``init_cfg=dict(type='Pretrained', checkpoint=DST)``.
Only the backbone is kept (heads, final norm, FCMAE decoder, detector necks are dropped and
listed). With ``--arch`` the result is also checked against that backbone (a checkpoint of another
arch fails here rather than at training time). SRC is read without executing pickled code, and
nothing is downloaded: SRC must be a local file. Prints a short report; any failure is one
`error: ...` line, exit status 1.
"""
import argparse
import os
import sys

from convnext_backbone.checkpoint import (
    FORMATS,
    CheckpointError,
    convert_state_dict,
    describe_arch,
    load_pretrained,
    read_state_dict,
    save_state_dict,
)
from convnext_backbone.checkpoint.loading import summarize_keys
from convnext_backbone.cli.errors import error_line


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='convert_checkpoint.py',
        description='Convert a ConvNeXt/ConvNeXt-V2 checkpoint to this package\'s naming.')
    parser.add_argument('src', help='input checkpoint (.pth/.pt/.bin/.ckpt or .safetensors)')
    parser.add_argument('dst', help='output file; .safetensors writes safetensors, else torch')
    parser.add_argument('--arch', help='check the result against this backbone arch, '
                        'e.g. v1-tiny or v2-atto')
    parser.add_argument('--format', default='auto', choices=('auto',) + FORMATS,
                        help='source layout (default: detected from the key names)')
    parser.add_argument('--key', help='take the state dict from this entry of the checkpoint '
                        '(e.g. model_ema); default: state_dict, model, module, then EMA copies')
    return parser.parse_args(argv)


def convert(args: argparse.Namespace) -> str:
    """Do the conversion; return the report text. Raises on any problem."""
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        raise ValueError('DST must differ from SRC (the source is never overwritten).')
    state_dict = read_state_dict(args.src, key=args.key)
    converted = convert_state_dict(state_dict, None if args.format == 'auto' else args.format)
    lines = [f'{args.src}: {converted.source} format, {len(state_dict)} tensors; '
             f'looks like {describe_arch(converted)}.']
    if args.arch:
        from convnext_backbone.models import ConvNeXt, resolve_arch
        spec = resolve_arch(args.arch)
        model = ConvNeXt(arch=args.arch, out_indices=tuple(range(len(spec.depths))))
        report = load_pretrained(model, converted, logger='silent', name=args.src)
        lines.append(f'Checked against arch {spec.name}: {report.num_loaded} tensors fit'
                     + (f'; output norms not in the checkpoint: '
                        f'{len(report.fresh)} tensors (start fresh)' if report.fresh else '')
                     + '.')
    save_state_dict(converted, args.dst, metadata={'source': os.path.basename(args.src),
                                                   'source_format': converted.source})
    kind = 'safetensors' if args.dst.endswith('.safetensors') else 'torch {"state_dict": ...}'
    lines.append(f'Wrote {len(converted)} tensors to {args.dst} ({kind}).')
    if converted.dropped:
        lines.append(f'Dropped {len(converted.dropped)} keys the backbone does not use: '
                     f'{summarize_keys(converted.dropped, 6)}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        print(convert(args))
    except (OSError, CheckpointError, ValueError) as exc:
        print(error_line(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    from convnext_backbone.cli import run_tool
    run_tool(main)
