"""The last line of ``make demo`` / ``make demo-seg``: the result, and whether it is in the range
measured on Intel and AMD CPUs.

    python tools/demo_result.py det work_dirs/demo_maskrcnn/test [--changed "OPTIONS"]
    python tools/demo_result.py seg work_dirs/demo_upernet/test

Reads the metrics ``tools/test.py`` wrote into its work dir (mmengine's ``<timestamp>.json`` of
the newest run) and prints one line, e.g. ``make demo result: box AP 0.357, mask AP 0.427 --
within the range measured on AMD EPYC and Intel Xeon CPUs, ...: box AP 0.32-0.40, mask AP
0.39-0.47 (docs/benchmarks.md, ...)``. :data:`RANGES` is the one place the demos'
expected results are written: the README and docs/benchmarks.md quote them (a test checks
that they quote these numbers), and docs/benchmarks.md records every run they come from.
``--changed``: the run was changed (make's DEMO_OPTIONS / TOY_OPTIONS), so the line says the
range does not apply instead of judging. Exit status 0 either way: the demo ran; a result
outside the range is said in the line, with what to do.
"""
import argparse
import glob
import json
import os
import sys

WHERE = 'docs/benchmarks.md, "The demos\' results"'
MEASURED_ON = 'AMD EPYC and Intel Xeon CPUs, AVX-512 and emulated AVX2, seeds 0-2, 1-2 threads'
# Each demo: its metrics (key in tools/test.py's metrics, label, lowest and highest measured,
# digits of the range, digits printed). The ranges span every run of docs/benchmarks.md,
# "The demos' results" (tests/tools/test_demo_result.py checks it).
RANGES = {
    'det': {'name': 'make demo', 'metrics': [
        ('coco/bbox_mAP', 'box AP', 0.32, 0.40, 2, 3),
        ('coco/segm_mAP', 'mask AP', 0.39, 0.47, 2, 3)]},
    'seg': {'name': 'make demo-seg', 'metrics': [
        ('mIoU', 'mIoU', 74.7, 80.0, 1, 2)]},
}


def range_text(demo: str) -> str:
    """``box AP 0.32-0.40, mask AP 0.39-0.47``: the ranges as the README quotes them."""
    return ', '.join(f'{label} {lo:.{d}f}-{hi:.{d}f}'
                     for _, label, lo, hi, d, _ in RANGES[demo]['metrics'])


def newest_metrics(test_dir: str) -> dict:
    """The metrics of the newest ``tools/test.py`` run whose work dir is ``test_dir``."""
    runs = sorted(glob.glob(os.path.join(test_dir, '*', '*.json')), key=os.path.getmtime)
    for path in reversed(runs):
        if os.path.basename(path) == os.path.basename(os.path.dirname(path)) + '.json':
            with open(path) as f:
                return json.load(f)
    raise FileNotFoundError(f'no metrics of tools/test.py in {test_dir} (expected '
                            f'{test_dir}/<timestamp>/<timestamp>.json): run the demo\'s '
                            'tools/test.py step first')


def demo_line(demo: str, metrics: dict, changed: str = '') -> str:
    """The one line for ``metrics`` (a dict from :func:`newest_metrics`)."""
    spec, values, outside = RANGES[demo], [], []
    for key, label, lo, hi, _, digits in spec['metrics']:
        if key not in metrics:
            raise KeyError(f'{key} is not among the test metrics ({", ".join(sorted(metrics))}): '
                           f'is this the {spec["name"]} config\'s test output?')
        value = float(metrics[key])
        values.append(f'{label} {value:.{digits}f}')
        if not lo <= round(value, digits) <= hi:
            outside.append(label)
    result = f'{spec["name"]} result: {", ".join(values)}'
    measured = f'the range measured on {MEASURED_ON}: {range_text(demo)} ({WHERE})'
    if changed.strip():
        return (f"{result} -- the run was changed (make's DEMO_OPTIONS / TOY_OPTIONS), so "
                f'{measured} does not apply')
    if not outside:
        return f'{result} -- within {measured}'
    return (f'{result} -- {" and ".join(outside)} outside {measured}; if the code, the toy '
            'config and the data are as in the clone, this CPU kind or thread count gives other '
            "results: please report this line with lscpu's model name")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('demo', choices=sorted(RANGES))
    parser.add_argument('test_dir', help="tools/test.py's --work-dir of the demo")
    parser.add_argument('--changed', default='', help='what changed the run (make\'s '
                        'DEMO_OPTIONS and TOY_OPTIONS); empty: the demo as shipped')
    args = parser.parse_args(argv)
    try:
        print(demo_line(args.demo, newest_metrics(args.test_dir), args.changed))
    except (OSError, KeyError, ValueError) as error:
        sys.exit(f'error: {error.args[0] if error.args else error}')


if __name__ == '__main__':
    main()
