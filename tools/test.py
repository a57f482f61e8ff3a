"""Evaluate a checkpoint: COCO bbox/segm AP (mmdet configs) or mIoU (mmseg configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PATH] [--show-dir DIR] [--tta]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi] [--trust-checkpoint PATH]
        [--overwrite-results]

CHECKPOINT: a file, an http(s):// URL, or the word `released`: the weights released with the
paper for CONFIG (listed in the model index, e.g. `python tools/test.py
configs/maskrcnn_convnext_t_coco.py released`). URLs are downloaded once into torch hub's cache
(torch.hub.get_dir()/checkpoints, following $TORCH_HOME), complete or not at all;
$CONVNEXT_RELEASE_BASE fetches the released files from a mirror folder instead.

--out: detection results as a .pkl file (mmdet) / predicted label maps into a folder (mmseg);
results of an earlier test there are refused unless --overwrite-results, and the new ones
arrive whole or not at all (cli.results).
--show-dir: draw predictions on every test image into DIR, where mmdet's and mmseg's own
tools/test.py put them: detection WORK_DIR/TIMESTAMP/DIR for a relative DIR (the run's log
folder), segmentation DIR/vis_data/vis_image from the current folder; an absolute DIR as it is.
--work-dir: default work_dirs/<config name> (as theirs). --tta: the config's test-time
augmentation (multi-scale + flip) instead of single-scale testing. The run holds its work dir
(as tools/train.py). Any failure ends with one `error: ...` line that names the problem (and
the fix); --debug adds the traceback.
"""
import argparse
import contextlib

import convnext_backbone  # noqa: F401  (registers our modules)
from convnext_backbone.checkpoint import checkpoint_argument
from convnext_backbone.cli import arguments, checks, config, distributed, results, run_tool
from convnext_backbone.cli.runner import ToolRunner
from convnext_backbone.cli.startup import started

LOADERS = ('test_dataloader',)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_config(parser)
    parser.add_argument('checkpoint', help="checkpoint file, http(s):// URL, or 'released' (the "
                        'weights released with the paper for CONFIG)')
    arguments.add_run(parser, 'where logs and metrics go')
    parser.add_argument('--out', help='dump predictions (.pkl for detection, a folder for '
                        'segmentation); never replaces earlier results silently')
    parser.add_argument(results.FLAG, action='store_true', help=results.FLAG_HELP)
    parser.add_argument('--show-dir', help='draw predictions into this folder (relative: '
                        'detection under WORK_DIR/TIMESTAMP/, as mmdet\'s tools/test.py)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    return parser.parse_args(argv)


TTA_HELP = (
    'Our segmentation configs (UperNet, DeepLabV3+, Mask2Former ADE20K) have one, from mmseg\'s '
    'ADE20K base (scales 0.5-1.75 and flips); our detection configs have none: the ConvNeXt '
    'paper reports single-scale detection, and mmdet\'s DetTTAModel merges boxes only (instance '
    'masks, i.e. Mask R-CNN, Cascade Mask R-CNN and Mask2Former, it refuses). For a detector of '
    "boxes only (DINO), add mmdet's: _base_ = [..., 'mmdet::retinanet/retinanet_tta.py'] "
    '(tta_model and tta_pipeline).')


def use_tta(cfg) -> None:
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ValueError(f'--tta: {cfg.filename} has no tta_model/tta_pipeline. {TTA_HELP}')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model = dict(**cfg.tta_model, module=cfg.model)


@contextlib.contextmanager
def startup(argv=None):
    """Everything before the Runner: the arguments, the config prepared, the work dir held,
    every check; yields the config the Runner gets."""
    args = parse_args(argv)
    distributed.check_launcher(args.launcher, 'test')
    config.trust_checkpoints(args.trust_checkpoint)
    checkpoint = checkpoint_argument(args.checkpoint, args.config, fetch=False)
    config.flush_denormals()
    cfg = config.load_config(args.config, args.cfg_options)
    config.set_work_dir(cfg, args.config, args.work_dir)
    cfg.launcher = args.launcher
    config.fall_back_to_fp32_without_gpu(cfg)
    if args.show_dir:
        config.draw_predictions(cfg, args.show_dir)
    if args.tta:
        use_tta(cfg)
    if args.out:
        results.check_target(cfg, args.out, args.overwrite_results)
        results.configure(cfg, args.out)
    checks.check_type_names(cfg)
    first = args.launcher == 'none' or distributed.rank() == 0
    with started(cfg, 'test', args.launcher, LOADERS), \
            results.written_atomically(cfg, args.out, main=first):
        cfg.load_from = checkpoint_argument(checkpoint, args.config)  # a URL: downloaded now
        yield cfg


def main(argv=None):
    with startup(argv) as cfg:
        ToolRunner.from_cfg(cfg).test()
    distributed.end_distributed_worker()


if __name__ == '__main__':
    run_tool(main, extra_errors=(ValueError,))
