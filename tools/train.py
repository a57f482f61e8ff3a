"""Train a detector or segmentor from one of our configs (or any mmdet/mmseg config).

    python tools/train.py configs/maskrcnn_convnext_t_coco.py [--work-dir DIR] [--resume [PATH]]
        [--amp] [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
        [--trust-checkpoint PATH ...] [--allow-nonfinite] [--partial-load]
        [--overwrite-checkpoints] [--amp-dtype float16|bfloat16]

A thin command line over mmengine's Runner; convnext_backbone.cli prepares and checks the config
first (work dir, AMP on CPU, type names, our components' values, datasets, the data itself:
annotation files, images, classes against the heads; what would fail at the first validation or
checkpoint). The run holds its work dir (a second run into it is refused; a
start that fails leaves it as it was); the model's parts are checked to fit once built; the
config dump goes to the log file. What a run does beyond mmengine's defaults
(crash-safe checkpoints, a NaN/inf loss stops training, --resume continues bit-exactly) comes
from the config: our configs' base runtimes name those hooks. Any failure ends with one
`error: ...` line (--debug: with the traceback); Ctrl-C with one line and exit status 130.
"""
import argparse
import contextlib

from mmengine.logging import print_log

import convnext_backbone  # noqa: F401  (registers our modules)
from convnext_backbone.cli import arguments, checks, config, distributed, run_tool
from convnext_backbone.cli.runner import ToolRunner
from convnext_backbone.cli.startup import started

LOADERS = ('train_dataloader', 'val_dataloader')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_config(parser)
    arguments.add_run(parser, 'where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='PATH',
                        help='resume from PATH, or from the latest checkpoint of the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (fp16 on a GPU; fp32 on a machine without one)')
    parser.add_argument('--amp-dtype', choices=('float16', 'bfloat16'),
                        help='mixed precision in this dtype (implies --amp); bfloat16 also '
                        'runs on a CPU with bf16 support (autocast, CPUAutocastOptimWrapper)')
    parser.add_argument('--allow-nonfinite', action='store_true',
                        help='keep training when a loss is NaN/inf (warn instead of stopping)')
    parser.add_argument('--partial-load', action='store_true',
                        help='load_from: load only the tensors that fit the model (fine-tuning '
                        'on another dataset) and log what stays freshly initialised')
    parser.add_argument('--overwrite-checkpoints', action='store_true',
                        help="start afresh in a work dir holding an earlier run's checkpoints, "
                        'replacing them (without it such a run is refused)')
    return parser.parse_args(argv)


@contextlib.contextmanager
def startup(argv=None):
    """Everything before the Runner: the arguments, the config prepared, the work dir held,
    every check; yields the config the Runner gets."""
    args = parse_args(argv)
    distributed.check_launcher(args.launcher, 'train')
    config.flush_denormals()
    cfg = config.load_config(args.config, args.cfg_options)
    config.set_work_dir(cfg, args.config, args.work_dir)
    cfg.launcher = args.launcher
    if args.amp or args.amp_dtype:
        config.enable_amp(cfg, args.amp_dtype)
    config.cpu_autocast_without_gpu(cfg)
    config.fall_back_to_fp32_without_gpu(cfg)
    config.trust_checkpoints(args.trust_checkpoint)
    config.set_resume(cfg, args.resume)
    if args.allow_nonfinite and not config.allow_nonfinite_losses(cfg):
        print_log('--allow-nonfinite: this config has no NonFiniteLossHook, so non-finite losses '
                  'are not checked at all.', logger='current')
    config.set_checkpoint_hook_options(cfg, partial_load=args.partial_load,
                                       overwrite=args.overwrite_checkpoints)
    checks.check_type_names(cfg)
    with started(cfg, 'train', args.launcher, LOADERS):
        yield cfg


def main(argv=None):
    with startup(argv) as cfg:
        ToolRunner.from_cfg(cfg).train()
    distributed.end_distributed_worker()


if __name__ == '__main__':
    run_tool(main)
