"""Bad input to the ONNX export (tools/export.py and the graph it writes), each refused in one
clear line that names the problem and the fix; a failed export leaves the earlier file as it
was."""
import pytest
from deploy_cases import EXPORT_SHAPE, QUERY_HEADS, TOY_DET, TOY_SEG

from conftest import REPO, load_tool, run_tool

pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

from convnext_backbone.deploy import (  # noqa: E402
    ExportError,
    OnnxModel,
    build_model,
    export,
    load_config,
)
from convnext_backbone.deploy.verify import images_for  # noqa: E402


@pytest.fixture(scope='module')
def seg_checkpoint(tmp_path_factory):
    """A checkpoint of the toy UperNet (its random weights, saved)."""
    from convnext_backbone.checkpoint import save_state_dict
    path = tmp_path_factory.mktemp('seg_ckpt') / 'upernet.pth'
    save_state_dict(build_model(load_config(TOY_SEG)).state_dict(), path)
    return path


@pytest.fixture(scope='module')
def tool():
    return load_tool('export')


@pytest.mark.parametrize('config, shape, message', [
    (TOY_SEG, ('16', '64'), r'--shape 16 64: .*at least 32 .*pads nothing.* 32 64'),
    (TOY_DET, ('0', '64'), r'--shape 0 64: .*at least 1; .* 1 64')])
def test_shape_too_small(tool, tmp_path, config, shape, message):
    with pytest.raises(ExportError, match=message):
        tool.main([config, 'none', '--out', str(tmp_path / 'a.onnx'), '--shape', *shape])


def test_small_input_to_a_graph_that_pads_nothing(tmp_path):
    graph = OnnxModel(export(TOY_SEG, None, str(tmp_path / 'seg.onnx'), shape=EXPORT_SHAPE))
    assert graph(images_for((32, 45)))['seg_logits'].shape[2:] == (32, 45)
    with pytest.raises(ExportError, match=r'size 20x45: .*at least 32 .*resize the image'):
        graph(images_for((20, 45)))


def test_slide_config_is_refused(tool, tmp_path):
    config = str(REPO / 'configs/upernet/upernet_convnext_t_160k_ade20k.py')
    with pytest.raises(ExportError, match=r'sliding windows .*crop \(512, 512\), stride '
                                          r'\(341, 341\).*--cfg-options model.test_cfg.mode=whole'):
        tool.main([config, 'none', '--out', str(tmp_path / 'a.onnx')])


def test_verify_needs_an_onnx_file_and_existing_images(tool, tmp_path):
    with pytest.raises(ExportError, match=r'--verify compares ONNX graphs .*FILE\.onnx'):
        tool.main([TOY_SEG, 'none', '--out', str(tmp_path / 'a.pt2'), '--verify'])
    with pytest.raises(ExportError, match=r'--verify-image .*nope\.jpg does not exist'):
        tool.main([TOY_SEG, 'none', '--out', str(tmp_path / 'a.onnx'), '--verify-image',
                   str(tmp_path / 'nope.jpg')])
    assert not (tmp_path / 'a.onnx').exists()  # refused before the export


def test_checkpoint_of_another_model(tool, tmp_path, seg_checkpoint):
    with pytest.raises(ExportError, match=r'does not fit the model of .*missing keys: \d+ .*'
                                          r'unexpected keys: \d+ \(decode_head'):
        tool.main([TOY_DET, str(seg_checkpoint), '--out', str(tmp_path / 'a.onnx')])


def test_mis_shaped_checkpoint(tool, tmp_path, seg_checkpoint):
    """The same model with other sizes: mis-shaped keys are named, nothing half-loaded."""
    with pytest.raises(ExportError, match=r'mis-shaped .*decode_head.conv_seg.weight'):
        tool.main([TOY_SEG, str(seg_checkpoint), '--out', str(tmp_path / 'a.onnx'),
                   '--cfg-options', 'model.decode_head.num_classes=7'])


def test_head_that_cannot_export(tool, tmp_path):
    """The refusal names every whole model that exports: the model index's collections whose
    configs pass the export's one decision (query heads are those that do not)."""
    from convnext_backbone.deploy.exportable import collections
    with pytest.raises(ExportError, match='cannot export this model.*--backbone-only') as info:
        tool.main([TOY_DET, 'none', '--out', str(tmp_path / 'a.onnx'), '--cfg-options',
                   'model.roi_head.mask_head=None', 'model.roi_head.mask_roi_extractor=None'])
    listed = str(info.value).split('configs of the model index: ')[1].split(' (or any')[0]
    expected = [name for name, configs in collections().items()
                if not any(family in c for family in QUERY_HEADS for c in configs)]
    assert listed.split(', ') == expected
    assert {'Mask R-CNN ConvNeXt', 'Cascade Mask R-CNN ConvNeXt', 'UperNet ConvNeXt',
            'DeepLabV3+ ConvNeXt'} <= set(expected), expected
    assert not {'Mask2Former ConvNeXt', 'DINO ConvNeXt'} & set(expected), expected


def test_model_that_cannot_be_built(tool, tmp_path):
    with pytest.raises(ExportError, match='could not be built .*NoSuchDetector.*fix the config'):
        tool.main([TOY_DET, 'none', '--out', str(tmp_path / 'a.onnx'), '--cfg-options',
                   'model.type=NoSuchDetector'])


def test_output_name(tool, tmp_path):
    with pytest.raises(ExportError,
                       match=r'--out .*a\.pth: name the output file \*\.onnx .*\*\.pt2'):
        tool.main([TOY_DET, 'none', '--out', str(tmp_path / 'a.pth')])


@pytest.mark.slow  # runs the tool in a subprocess
def test_cli_error_is_one_line(tmp_path):
    proc = run_tool(REPO / 'tools' / 'export.py', TOY_DET, tmp_path / 'missing.pth', '--out',
                    tmp_path / 'a.onnx', check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr
    assert errors[0].startswith('error: checkpoint') and 'does not exist' in errors[0]
    assert 'Traceback' not in proc.stderr


def test_failed_export_keeps_the_earlier_file(tmp_path, monkeypatch):
    """The graph is written beside ``--out`` and moved there complete: an export that dies
    half-way leaves the earlier file as it was, and no partial file."""
    from convnext_backbone.deploy import driver
    out = tmp_path / 'seg.onnx'
    out.write_text('an earlier export')

    def dies_half_way(wrapper, task, path, *args):
        with open(path, 'w') as f:
            f.write('half a graph')
        raise ExportError('torch.onnx.export failed (injected)')
    monkeypatch.setattr(driver, '_trace', dies_half_way)
    with pytest.raises(ExportError, match='injected'):
        export(TOY_SEG, None, str(out), shape=EXPORT_SHAPE)
    assert out.read_text() == 'an earlier export'
    assert [p.name for p in tmp_path.iterdir()] == ['seg.onnx']
