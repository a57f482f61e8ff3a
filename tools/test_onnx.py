"""Evaluate an exported ONNX graph: COCO bbox/segm AP (mmdet configs) or mIoU (mmseg configs).

    python tools/test_onnx.py CONFIG GRAPH.onnx [--cfg-options key=value ...] [--threads N]
        [--work-dir DIR]

tools/test.py for a graph written by tools/export.py (fp32 or int8): the config's own test
dataloader, pipeline and evaluator; the graph in onnxruntime (CPU) fed the pipeline's resized
image, its outputs brought to the original image as mmdet/mmseg do (boxes rescaled, masks
pasted, logits resized), then the host's metric. Prints the graph, the runtime and the metrics
as tools/test.py does. --threads: onnxruntime's intra-op threads (default: its own choice).
--work-dir: also write the metrics as JSON there (GRAPH_NAME.TIMESTAMP.json). A graph of
another task, other classes or other test-time settings than CONFIG is refused. Any failure
ends with one `error: ...` line (--debug: the traceback). See docs/deployment.md.
"""
import argparse
import json
import os
import time

import convnext_backbone  # noqa: F401  (registers our modules)
from convnext_backbone.cli import arguments, checks, data_checks, run_tool
from convnext_backbone.deploy import ExportError, load_config
from convnext_backbone.deploy.evaluate import (
    check_graph_fits,
    evaluate,
    open_graph,
    plain,
    runtime_name,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_config(parser)
    parser.add_argument('graph', help='the .onnx file tools/export.py wrote from CONFIG')
    parser.add_argument('--threads', type=int, default=0,
                        help="onnxruntime's intra-op threads (default 0: onnxruntime chooses)")
    parser.add_argument('--work-dir', help='also write the metrics as JSON into this folder')
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f'--threads {args.threads}: give 0 (onnxruntime chooses) or more')
    return args


def write_metrics(work_dir: str, record: dict) -> str:
    """The run's record as DIR/GRAPH_NAME.TIMESTAMP.json (a new file each run)."""
    os.makedirs(work_dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(record['graph']))[0]
    path = os.path.join(work_dir, f'{name}.{time.strftime("%Y%m%d_%H%M%S")}.json')
    text = json.dumps(record, indent=2)
    with open(path, 'x') as f:  # never replace an earlier record
        f.write(text)
    return path


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    graph = open_graph(args.graph, args.threads)
    check_graph_fits(cfg, graph, args.config, args.graph)
    checks.check_type_names(cfg)
    checks.check_datasets(cfg, ['test_dataloader'])
    data_checks.check_data(cfg, ['test_dataloader'])
    runtime = runtime_name(graph)
    print(f'graph: {args.graph} ({graph.task}; {runtime})', flush=True)
    metrics = evaluate(cfg, graph, log=lambda line: print(line, flush=True))
    if args.work_dir:
        record = dict(config=args.config, graph=args.graph, runtime=runtime,
                      metrics=plain(metrics))
        print(f'wrote {write_metrics(args.work_dir, record)}')


if __name__ == '__main__':
    run_tool(main, extra_errors=(ExportError,))
