"""Evaluate a checkpoint: COCO bbox/segm AP (mmdet configs) or mIoU (mmseg configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PATH] [--show-dir DIR] [--tta]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi] [--trust-checkpoint PATH]

CHECKPOINT: a file, an http(s):// URL, or the word `released`: the weights released with the
paper for CONFIG (listed in the model index, e.g. `python tools/test.py
configs/maskrcnn_convnext_t_coco.py released`). URLs are downloaded once into torch hub's cache
(torch.hub.get_dir()/checkpoints, following $TORCH_HOME), complete or not at all;
$CONVNEXT_RELEASE_BASE fetches the released files from a mirror folder instead.

--out: detection results as a .pkl file (mmdet) / predicted label maps into a folder (mmseg).
--show-dir: draw predictions on the test images into DIR. --tta: the config's test-time
augmentation (multi-scale + flip) instead of single-scale testing. The run holds its work dir
(as tools/train.py). Any failure ends with one `error: ...` line that names the problem (and
the fix); --debug adds the traceback.
"""
import argparse
import os.path as osp

import convnext_backbone  # noqa: F401  (registers our modules)
from convnext_backbone.checkpoint import checkpoint_argument
from convnext_backbone.cli import (
    arguments,
    checks,
    config,
    data_checks,
    distributed,
    run_tool,
    work_dir,
)
from convnext_backbone.cli.runner import ToolRunner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_config(parser)
    parser.add_argument('checkpoint', help="checkpoint file, http(s):// URL, or 'released' (the "
                        'weights released with the paper for CONFIG)')
    arguments.add_run(parser, 'where logs and metrics go')
    parser.add_argument('--out', help='dump predictions (.pkl for detection, a folder for '
                        'segmentation)')
    parser.add_argument('--show-dir', help='draw predictions into this folder')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    return parser.parse_args(argv)


def draw_predictions(cfg, show_dir: str) -> None:
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a visualization hook in default_hooks '
                         "(e.g. dict(type='DetVisualizationHook')).")
    hook.update(draw=True, interval=1)
    show_dir = osp.abspath(show_dir)
    if cfg.default_scope == 'mmdet':
        hook.test_out_dir = show_dir  # an absolute path survives the hook's join
    else:
        cfg.visualizer.save_dir = show_dir


def use_tta(cfg) -> None:
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ValueError(f'--tta: the config has no tta_model/tta_pipeline; our configs define '
                         f'them (see configs/_base_). Config: {cfg.filename}')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model = dict(**cfg.tta_model, module=cfg.model)


def dump_predictions(cfg, out: str) -> None:
    if cfg.default_scope == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out for detection must be a .pkl file (the detections are '
                             f'pickled), got {out}: use e.g. --out results.pkl')
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
            else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dict(type='DumpDetResults', out_file_path=out)]
    else:
        cfg.test_evaluator.update(output_dir=out, keep_results=True)


def main(argv=None):
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
        draw_predictions(cfg, args.show_dir)
    if args.tta:
        use_tta(cfg)
    if args.out:
        dump_predictions(cfg, args.out)
    checks.check_type_names(cfg)
    first = args.launcher == 'none' or distributed.rank() == 0
    with work_dir.claim_work_dir(cfg.work_dir, 'test', lock=first):
        checks.check_datasets(cfg, ['test_dataloader'])
        data_checks.check_data(cfg, ['test_dataloader'])
        cfg.load_from = checkpoint_argument(checkpoint, args.config)  # a URL: downloaded now
        if args.launcher != 'none':
            distributed.cpu_distributed()
        ToolRunner.from_cfg(cfg).test()
    distributed.end_distributed_worker()


if __name__ == '__main__':
    run_tool(main, extra_errors=(ValueError,))
