"""ONNX export of DeepLabV3+ on a dilated ConvNeXt (the toy config: output stride 8, dilated
stride-1 downsampling with one-sided 'same' padding, dilated depthwise and ASPP convolutions,
image pooling): plain onnxruntime gives mmseg's own whole-image logits (``test_step``) at sizes
other than the export's, a multiple of the output stride but not of 32; standard operators only."""
import pytest

from conftest import REPO

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from convnext_backbone.deploy import ExportError, OnnxModel, export  # noqa: E402
from convnext_backbone.deploy.verify import images_for, verify  # noqa: E402

TOY = str(REPO / 'configs' / 'toy' / 'deeplabv3plus_convnext_toy_ade20k.py')


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_toy_deeplabv3plus_graph_equals_mmseg(tmp_path):
    path = export(TOY, None, str(tmp_path / 'deeplab.onnx'), shape=(64, 64))
    report = verify(TOY, None, path, shape=(72, 120))  # multiples of 8, not of 32; 2 images
    assert report['task'] == 'segmentation' and report['shape'] == (72, 120)
    assert report['max_abs_diff'] < 1e-3, report
    proto = onnx.load(path)
    assert all(node.domain in ('', 'ai.onnx') for node in proto.graph.node)
    dilations = {tuple(a.ints) for node in proto.graph.node if node.op_type == 'Conv'
                 for a in node.attribute if a.name == 'dilations'}
    assert {(2, 2), (4, 4), (9, 9)} <= dilations  # backbone stages 2 and 3, the widest ASPP rate
    with pytest.raises(ExportError, match='multiples of 8'):
        OnnxModel(path)(images_for((100, 128)))
