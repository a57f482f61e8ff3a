"""ONNX export of DeepLabV3+ on a dilated ConvNeXt (the toy config: output stride 8, dilated
stride-1 downsampling with one-sided 'same' padding, dilated depthwise and ASPP convolutions,
image pooling): plain onnxruntime gives ``inference_model``'s logits on image files of everyday
sizes, fed per the graph contract (the image as the test pipeline resized it, any size);
standard operators only."""
import pytest
from deploy_cases import assert_equals_host

from conftest import REPO

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from convnext_backbone.deploy import OnnxModel, export  # noqa: E402
from convnext_backbone.deploy.verify import images_for, verify  # noqa: E402

TOY = str(REPO / 'configs' / 'toy' / 'deeplabv3plus_convnext_toy_ade20k.py')


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_toy_deeplabv3plus_graph_equals_mmseg(tmp_path):
    path = export(TOY, None, str(tmp_path / 'deeplab.onnx'), shape=(64, 64))
    report = verify(TOY, None, path)  # generated image files: 375x500, 500x375, 150x227, 33x47
    assert report['task'] == 'segmentation' and len(report['images']) >= 4
    assert_equals_host(report)
    proto = onnx.load(path)
    assert all(node.domain in ('', 'ai.onnx') for node in proto.graph.node)
    dilations = {tuple(a.ints) for node in proto.graph.node if node.op_type == 'Conv'
                 for a in node.attribute if a.name == 'dilations'}
    assert {(2, 2), (4, 4), (9, 9)} <= dilations  # backbone stages 2 and 3, the widest ASPP rate
    out = OnnxModel(path)(images_for((99, 131)))  # no multiple of the output stride needed
    assert out['seg_logits'].shape[2:] == (99, 131)
