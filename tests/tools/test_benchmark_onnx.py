"""tools/benchmark_onnx.py: eager, fp32 onnxruntime and the quantized graphs side by side, one
row per case; times are never asserted (docs/deployment.md records them), the table and the
int8-vs-fp32 comparison are."""
import re

import numpy as np
import pytest

from conftest import THREADS, load_tool

pytest.importorskip('onnxruntime')


@pytest.fixture(scope='module')
def tool():
    return load_tool('benchmark_onnx')


def test_match_boxes_by_hand(tool):
    a = dict(boxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32),
             labels=np.array([1, 2]), scores=np.array([0.9, 0.5]))
    b = dict(boxes=np.array([[20, 20, 30, 31], [0, 0, 10, 10.2]], np.float32),
             labels=np.array([2, 1]), scores=np.array([0.45, 0.88]))
    matched, diff = tool.match_boxes(a, b)  # IoU 10/11 = 0.91 and 100/102 = 0.98
    assert matched == 2 and diff == pytest.approx(0.05)
    b['labels'] = np.array([1, 1])  # the second box now has another label
    assert tool.match_boxes(a, b) == (1, pytest.approx(0.02))
    assert tool.match_boxes(a, b, iou_min=0.99) == (0, 0.0)


@pytest.mark.slow  # exports, calibrates and times the toy detector (~50 s)
def test_toy_detector_row(tool, tmp_path, capsys):
    tool.main(['--cases', 'toy-maskrcnn', '--repeat', '1', '--quantize', 'int8', 'int8-dynamic',
               '--work-dir', str(tmp_path), '--threads', str(THREADS)])  # in-process: keep ours
    out = capsys.readouterr().out
    assert re.search(rf'^# .*(AVX2|AVX-512).*; {THREADS} threads; torch .*onnxruntime', out,
                     re.M), out
    header = next(line for line in out.splitlines() if line.startswith('| case'))
    assert [c.strip() for c in header.strip('|').split('|')] == [
        'case', 'input', 'eager (s)', 'onnxruntime (s)', 'eager / ORT',
        'int8 (s)', 'eager / int8', 'int8 vs fp32 ORT outputs',
        'int8-dynamic (s)', 'eager / int8-dynamic', 'int8-dynamic vs fp32 ORT outputs']
    row = next(line for line in out.splitlines() if line.startswith('| toy-maskrcnn'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[1] == '1x3x128x224' and len(cells) == 11
    for comparison in (cells[7], cells[10]):
        found = re.fullmatch(r'detections (\d+) \(fp32\) vs (\d+) \(int8\), (\d+) matched .*',
                             comparison)
        assert found and int(found[3]) <= min(int(found[1]), int(found[2])), comparison
    assert sorted(p.name for p in tmp_path.glob('*.onnx')) == [
        'toy-maskrcnn.int8-dynamic.onnx', 'toy-maskrcnn.int8.onnx', 'toy-maskrcnn.onnx']
