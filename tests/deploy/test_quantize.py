"""``tools/export.py --quantize int8``: the int8 graph next to the fp32 one runs in plain
onnxruntime, holds quantized ops, keeps the contract and metadata, and stays close to the fp32
graph; impossible requests are one error, before the export."""
from collections import Counter

import numpy as np
import pytest
from deploy_cases import EXPORT_SHAPE, TOY_SEG

from conftest import load_tool

pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')

from convnext_backbone.deploy import ExportError, OnnxModel  # noqa: E402
from convnext_backbone.deploy.quantize import quantize_graph  # noqa: E402
from convnext_backbone.deploy.verify import images_for  # noqa: E402

QUANTIZED = {'MatMulInteger', 'DynamicQuantizeLinear', 'ConvInteger', 'QLinearConv',
             'QLinearMatMul'}


@pytest.fixture(scope='module')
def tool():
    return load_tool('export')


def test_int8_upernet_next_to_fp32(tool, tmp_path, capsys):
    out = tmp_path / 'seg.onnx'
    tool.main([TOY_SEG, 'none', '--out', str(out), '--shape', *map(str, EXPORT_SHAPE),
               '--quantize', 'int8'])
    int8_path = tmp_path / 'seg.int8.onnx'
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed and f'wrote {int8_path}' in printed, printed

    ops = Counter(node.op_type for node in onnx.load(str(int8_path)).graph.node)
    fp32_ops = Counter(node.op_type for node in onnx.load(str(out)).graph.node)
    assert ops['MatMulInteger'] > 0 and ops['DynamicQuantizeLinear'] > 0, ops
    assert not QUANTIZED & set(fp32_ops), fp32_ops
    assert ops['MatMulInteger'] + ops['MatMul'] == fp32_ops['MatMul']

    fp32, int8 = OnnxModel(str(out)), OnnxModel(str(int8_path))
    assert int8.metadata.pop('quantization').startswith('int8: onnxruntime dynamic')
    assert int8.metadata == fp32.metadata
    for shape in ((90, 133), (150, 227)):  # sizes the graph pads (the contract holds)
        images = images_for(shape)
        a, b = fp32(images)['seg_logits'], int8(images)['seg_logits']
        assert b.shape == a.shape == (1, 5, *shape)
        assert not np.array_equal(a, b)  # it is another computation
        relative = np.abs(a - b).max() / np.abs(a).max()
        agreement = (a.argmax(1) == b.argmax(1)).mean()
        print(f'\n[int8] {shape}: max abs diff / max |fp32| {relative:.4f}, '
              f'argmax agreement {agreement:.4f}')
        assert relative < 0.02 and agreement >= 0.99, (shape, relative, agreement)


@pytest.mark.parametrize('args, message', [
    (['--out', 'a.pt2', '--quantize', 'int8'], r'--quantize int8 quantizes ONNX graphs .*'
                                               r'a\.pt2: export to FILE\.onnx'),
    (['--out', 'a.onnx', '--quantize', 'int4'], r'--quantize int4: the modes are int8')])
def test_impossible_quantization_is_refused_before_export(tool, tmp_path, args, message):
    args = [str(tmp_path / a) if a.startswith('a.') else a for a in args]
    with pytest.raises(ExportError, match=message):
        tool.main([TOY_SEG, 'none', *args])
    assert not list(tmp_path.iterdir())  # nothing written


def test_graph_that_cannot_be_quantized(tmp_path):
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'not a graph')
    with pytest.raises(ExportError, match=r'quantizing .*broken\.onnx to int8 failed .*fp32 '
                                          'graph is unaffected') as error:
        quantize_graph(str(broken))
    assert '\n' not in str(error.value)
    assert not (tmp_path / 'broken.int8.onnx').exists()
