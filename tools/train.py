"""Train a detector or segmentor from one of our configs (or any mmdet/mmseg config).

    python tools/train.py configs/maskrcnn_convnext_t_coco.py [--work-dir DIR] [--resume [PATH]]
        [--amp] [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
        [--trust-checkpoint PATH ...] [--allow-nonfinite]

A thin command line over mmengine's Runner; see convnext_backbone.launch for what it does to the
config first (work dir, AMP on CPU, type-name and dataset checks, the reliability hooks: a NaN/inf
loss stops training, --resume continues bit-exactly). Bad input ends with one `error: ...` line.
"""
import argparse
import sys

import convnext_backbone  # noqa: F401  (registers our modules, applies the compat fixes)
from convnext_backbone import launch
from mmengine.config import DictAction
from mmengine.runner import Runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='PATH',
                        help='resume from PATH, or from the latest checkpoint of the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU only; fp32 on CPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_dataloader.batch_size=4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--trust-checkpoint', nargs='+', default=[], metavar='PATH',
                        help='checkpoint files/folders you vouch for: full unpickling allowed')
    parser.add_argument('--allow-nonfinite', action='store_true',
                        help='keep training when a loss is NaN/inf (warn instead of stopping)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    launch.flush_denormals()
    cfg = launch.load_config(args.config, args.cfg_options)
    launch.set_work_dir(cfg, args.config, args.work_dir)
    cfg.launcher = args.launcher
    if args.amp:
        launch.enable_amp(cfg)
    launch.fall_back_to_fp32_without_gpu(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    launch.trust_checkpoints(args.trust_checkpoint)
    if args.resume and args.resume != 'auto':
        launch.check_checkpoint_file(args.resume, '--resume')
    launch.add_reliability_hooks(cfg, allow_nonfinite=args.allow_nonfinite)
    launch.check_type_names(cfg)
    launch.check_datasets(cfg, ['train_dataloader', 'val_dataloader'])
    runner = Runner.from_cfg(cfg)
    runner.train()
    launch.end_distributed_worker()


if __name__ == '__main__':
    try:
        main()
    except launch.USER_ERRORS as error:
        sys.exit(f'error: {error}')
