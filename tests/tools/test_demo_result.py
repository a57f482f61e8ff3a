"""tools/demo_result.py, the last line of ``make demo`` / ``make demo-seg``: the result and
whether it is in the range measured on Intel and AMD CPUs; the README and docs/benchmarks.md
quote that range, and it spans exactly the runs docs/benchmarks.md records."""
import json
import math
import re

import demo_result
import pytest

from conftest import REPO

SECTION = "## The demos' results"


def _metrics_dir(tmp_path, metrics, stamp='20261207_120000'):
    """A tools/test.py work dir as mmengine leaves it: <stamp>/<stamp>.json."""
    run = tmp_path / stamp
    run.mkdir(parents=True)
    (run / f'{stamp}.json').write_text(json.dumps(metrics))
    (run / 'vis_data').mkdir()
    return tmp_path


def _run(capsys, *argv):
    demo_result.main([str(a) for a in argv])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return out[0]


def test_within_the_range(tmp_path, capsys):
    test_dir = _metrics_dir(tmp_path, {'coco/bbox_mAP': 0.35, 'coco/segm_mAP': 0.431,
                                       'coco/bbox_mAP_50': 0.7})
    line = _run(capsys, 'det', test_dir)
    assert line.startswith('make demo result: box AP 0.350, mask AP 0.431 -- within the range '
                           f'measured on {demo_result.MEASURED_ON}: ')
    assert demo_result.range_text('det') in line and 'docs/benchmarks.md' in line


def test_outside_the_range_said_with_what_to_do(tmp_path, capsys):
    (_, _, lo, _, _, _), = demo_result.RANGES['seg']['metrics']
    line = _run(capsys, 'seg', _metrics_dir(tmp_path, {'mIoU': lo - 5, 'mAcc': 80.0}))
    assert f'make demo-seg result: mIoU {lo - 5:.2f} -- mIoU outside the range' in line
    assert 'please report this line' in line


def test_newest_run_counts_and_a_changed_run_is_not_judged(tmp_path, capsys):
    _metrics_dir(tmp_path, {'coco/bbox_mAP': 0.0, 'coco/segm_mAP': 0.0}, '20261207_100000')
    test_dir = _metrics_dir(tmp_path, {'coco/bbox_mAP': 0.01, 'coco/segm_mAP': 0.02},
                            '20261207_110000')
    line = _run(capsys, 'det', test_dir, '--changed', 'train_cfg.max_epochs=1')
    assert line.startswith('make demo result: box AP 0.010, mask AP 0.020 -- the run was '
                           "changed (make's DEMO_OPTIONS / TOY_OPTIONS), so the range")
    assert line.endswith('does not apply')


@pytest.mark.parametrize('demo,metrics,message', [
    ('det', None, 'no metrics of tools/test.py in'),
    ('det', {'mIoU': 79.0}, 'coco/bbox_mAP is not among the test metrics (mIoU)')])
def test_missing_metrics_one_error_line(tmp_path, demo, metrics, message):
    test_dir = _metrics_dir(tmp_path, metrics) if metrics else tmp_path
    with pytest.raises(SystemExit) as exc:
        demo_result.main([demo, str(test_dir)])
    assert str(exc.value).startswith(f'error: {message}') and '\n' not in str(exc.value)


def _recorded_runs():
    """Every value docs/benchmarks.md records for each demo metric (its results tables: the
    first cell names the demo, a header names the metric)."""
    text = (REPO / 'docs' / 'benchmarks.md').read_text()
    section = text[text.index(SECTION):]
    section = section[:section.find('\n## ', 1)] if '\n## ' in section[1:] else section
    values = {}
    for table in re.findall(r'((?:^\|.*\|\n)+)', section, flags=re.M):
        rows = [[c.strip() for c in li.strip('|').split('|')] for li in table.splitlines()]
        header = rows[0]
        for row in rows[2:]:
            demo = {'`make demo`': 'det', '`make demo-seg`': 'seg'}.get(row[0])
            for _, label, *_ in demo_result.RANGES.get(demo, {'metrics': []})['metrics']:
                values.setdefault((demo, label), []).append(float(row[header.index(label)]))
    return values


def test_ranges_span_exactly_the_recorded_runs():
    """The range of each metric: the lowest recorded value rounded down and the highest rounded
    up (to the range's digits); every recorded run is in it."""
    recorded = _recorded_runs()
    for demo, spec in demo_result.RANGES.items():
        for _, label, lo, hi, digits, _ in spec['metrics']:
            runs = recorded[(demo, label)]
            scale = 10 ** digits
            assert len(runs) >= 4, (demo, label, runs)
            assert lo == math.floor(min(runs) * scale + 1e-9) / scale, (demo, label, runs)
            assert hi == math.ceil(max(runs) * scale - 1e-9) / scale, (demo, label, runs)


def test_readme_and_benchmarks_quote_the_ranges():
    readme = ' '.join((REPO / 'README.md').read_text().split())
    benchmarks = ' '.join((REPO / 'docs' / 'benchmarks.md').read_text().split())
    for demo in demo_result.RANGES:
        for _, label, lo, hi, digits, _ in demo_result.RANGES[demo]['metrics']:
            quoted = f'{label} {lo:.{digits}f}-{hi:.{digits}f}'
            assert quoted in readme, quoted
            assert quoted in benchmarks, quoted
    assert demo_result.MEASURED_ON in benchmarks
