"""ONNX export of the backbone, UperNet and (Cascade) Mask R-CNN: the graph run in plain
onnxruntime must give the eager model's own results at an input size other than the export size,
with random and with briefly trained toy weights; bad input to tools/export.py is one clear
error line."""
import ast

import pytest
import torch

from conftest import REPO, load_tool, one_per_family_fast, run_tool, shipped_configs

pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

from convnext_backbone.deploy import (  # noqa: E402
    ExportError,
    OnnxModel,
    build_model,
    export,
    load_config,
    wrap,
)
from convnext_backbone.deploy.driver import task_of  # noqa: E402
from convnext_backbone.deploy.verify import images_for, verify  # noqa: E402

TOY_DET_REL = 'configs/toy/maskrcnn_convnext_toy_coco.py'
TOY_SEG_REL = 'configs/toy/upernet_convnext_toy_ade20k.py'
TOY_DET, TOY_SEG = str(REPO / TOY_DET_REL), str(REPO / TOY_SEG_REL)
TOY_CASCADE = str(REPO / 'tests/deploy/cascade_toy.py')
V2 = {'model.backbone.arch': dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256], grn=True),
      'model.backbone.layer_scale_init_value': 0}
EXPORT_SHAPE = (64, 64)
CHECK_SHAPE = (96, 128)  # another size than the export's: the graph's H and W are dynamic


@pytest.fixture(scope='module')
def trained_det(toy_root, tmp_path_factory):
    """The toy Mask R-CNN after 2 training iterations (4 images, batch 2)."""
    coco, work = toy_root / 'coco', tmp_path_factory.mktemp('deploy_det')
    ann = f'{coco}/annotations/instances_val2017.json'
    run_tool(REPO / 'tools' / 'train.py', TOY_DET_REL, '--work-dir', work, '--cfg-options',
             f'train_dataloader.dataset.data_root={coco}/',
             f'val_dataloader.dataset.data_root={coco}/', f'val_evaluator.ann_file={ann}',
             'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=5',
             'default_hooks.checkpoint.interval=1')
    return work / 'epoch_1.pth'


@pytest.fixture(scope='module')
def trained_seg(toy_root, tmp_path_factory):
    """The toy UperNet after 2 training iterations (batch 2)."""
    ade, work = toy_root / 'ade' / 'ADEChallengeData2016', tmp_path_factory.mktemp('deploy_seg')
    run_tool(REPO / 'tools' / 'train.py', TOY_SEG_REL, '--work-dir', work, '--cfg-options',
             *[f'{loader}.dataset.data_root={ade}' for loader in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')],
             'train_dataloader.batch_size=2', 'train_cfg.max_iters=2', 'train_cfg.val_interval=5',
             'default_hooks.checkpoint.interval=2')
    return work / 'iter_2.pth'


@pytest.fixture(scope='module')
def v2_checkpoints(tmp_path_factory):
    """V2 toy models with random GRN parameters (they start at zero, where GRN is the identity),
    saved as checkpoints: the graphs must compute GRN, and the export loads them strictly."""
    from convnext_backbone.checkpoint import save_state_dict
    paths = {}
    for config in (TOY_DET, TOY_SEG):
        model = build_model(load_config(config, V2))
        generator = torch.Generator().manual_seed(0)
        for name, param in model.named_parameters():
            if '.grn.' in name:
                param.data = torch.randn(param.shape, generator=generator) * 0.5
        paths[config] = tmp_path_factory.mktemp('v2') / 'v2.pth'
        save_state_dict(model.state_dict(), paths[config])
    return paths


@pytest.fixture(scope='module')
def tool():
    return load_tool('export')


def export_and_verify(tmp_path, config, checkpoint=None, cfg_options=None, **kwargs):
    out = export(config, checkpoint, str(tmp_path / 'model.onnx'), shape=EXPORT_SHAPE,
                 cfg_options=cfg_options, **kwargs)
    report = verify(config, checkpoint, out, shape=CHECK_SHAPE, cfg_options=cfg_options)
    print(f'\n[deploy] {config.rsplit("/", 1)[-1]} checkpoint={checkpoint is not None} '
          f'options={cfg_options}: {report}')  # the figures in docs/deployment.md (pytest -s)
    return report


def assert_same_detections(report):
    assert report['count_eager'] > 0, report  # something to compare
    assert report['count_onnx'] == report['count_eager'], report
    assert report['labels_equal'], report
    assert report['box_diff'] < 0.5, report
    assert report['score_diff'] < 1e-3, report
    assert report['mask_iou_min'] >= 0.99, report


def test_backbone_alone(tmp_path):
    report = export_and_verify(tmp_path, TOY_DET, backbone_only=True)
    assert report['task'] == 'backbone' and report['shape'] == CHECK_SHAPE
    assert report['max_abs_diff'] < 1e-4, report


def test_upernet_random_weights(tool, tmp_path, capsys):
    """Through the tool: export, then --verify at another size."""
    tool.main([TOY_SEG, 'none', '--out', str(tmp_path / 'seg.onnx'), '--shape',
               *map(str, EXPORT_SHAPE), '--verify'])
    out = capsys.readouterr().out
    assert f'wrote {tmp_path / "seg.onnx"}' in out
    report = ast.literal_eval(out.strip().splitlines()[-1])  # the printed report dict
    print(f'\n[deploy] {TOY_SEG_REL} via tools/export.py --verify: {report}')
    assert report['task'] == 'segmentation' and report['shape'] != EXPORT_SHAPE
    assert report['max_abs_diff'] < 1e-3, report


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_upernet_v2(tmp_path, v2_checkpoints):
    report = export_and_verify(tmp_path, TOY_SEG, str(v2_checkpoints[TOY_SEG]), cfg_options=V2)
    assert report['max_abs_diff'] < 1e-3, report


@pytest.mark.slow  # trains briefly through tools/train.py (subprocess)
def test_upernet_trained(tmp_path, trained_seg):
    report = export_and_verify(tmp_path, TOY_SEG, str(trained_seg))
    assert report['max_abs_diff'] < 1e-3, report


@pytest.fixture(scope='module')
def toy_det_onnx(tmp_path_factory):
    """The toy Mask R-CNN (random weights) exported once for the tests below."""
    return export(TOY_DET, None, str(tmp_path_factory.mktemp('det') / 'det.onnx'),
                  shape=EXPORT_SHAPE)


def test_mask_rcnn_random_weights(toy_det_onnx):
    report = verify(TOY_DET, None, toy_det_onnx, shape=CHECK_SHAPE)
    print(f'\n[deploy] {TOY_DET_REL} checkpoint=False: {report}')
    assert_same_detections(report)


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_mask_rcnn_v2(tmp_path, v2_checkpoints):
    assert_same_detections(export_and_verify(tmp_path, TOY_DET, str(v2_checkpoints[TOY_DET]),
                                             cfg_options=V2))


@pytest.mark.slow  # trains briefly through tools/train.py (subprocess)
def test_mask_rcnn_trained(tmp_path, trained_det):
    assert_same_detections(export_and_verify(tmp_path, TOY_DET, str(trained_det)))


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_cascade_mask_rcnn_random_weights(tmp_path):
    assert_same_detections(export_and_verify(tmp_path, TOY_CASCADE))


@pytest.mark.slow  # a whole-model export and comparison (4-5 s)
def test_no_detections(tmp_path):
    """An image where nothing passes the score threshold: empty outputs, as in eager mmdet."""
    report = export_and_verify(tmp_path, TOY_DET, cfg_options={'model.test_cfg.rcnn.score_thr':
                                                               0.999})
    assert report['count_onnx'] == report['count_eager'] == 0, report
    out = OnnxModel(str(tmp_path / 'model.onnx'))(images_for(CHECK_SHAPE))
    assert out['boxes'].shape == (0, 4) and out['masks'].shape == (0, *CHECK_SHAPE)


@pytest.mark.slow  # a whole-model export and comparison (4-5 s)
def test_static_shape(tmp_path):
    """--static: the graph takes exactly the export size (and says so for any other)."""
    out = export(TOY_SEG, None, str(tmp_path / 'static.onnx'), shape=CHECK_SHAPE, static=True)
    report = verify(TOY_SEG, None, out)
    assert report['shape'] == CHECK_SHAPE and report['max_abs_diff'] < 1e-3, report
    with pytest.raises(ExportError, match='exported with --static'):
        OnnxModel(out)(images_for(EXPORT_SHAPE))


@pytest.mark.slow  # torch.export of a whole segmentor: 10-20 s
@pytest.mark.parametrize('backbone_only', [False, True], ids=['upernet', 'backbone'])
def test_torch_export_program(tmp_path, backbone_only):
    """--out FILE.pt2: a torch.export program with the same contract (H, W, batch dynamic)."""
    from convnext_backbone.deploy.reference import eager_seg_logits
    path = export(TOY_SEG, None, str(tmp_path / 'seg.pt2'), shape=EXPORT_SHAPE,
                  backbone_only=backbone_only)
    program = torch.export.load(path).module()
    model = build_model(load_config(TOY_SEG))
    images = images_for(CHECK_SHAPE, batch=3)
    with torch.no_grad():
        out = program(images)
        if backbone_only:
            expected = model.backbone(model.data_preprocessor(dict(inputs=list(images)))['inputs'])
            assert max((a - b).abs().max().item() for a, b in zip(out, expected)) < 1e-4
        else:
            assert (out - eager_seg_logits(model, images)).abs().max().item() < 1e-3


def test_torch_export_of_a_detector_is_refused(tmp_path):
    with pytest.raises(ExportError, match=r'\.pt2 .*detector is not supported.*ONNX'):
        export(TOY_DET, None, str(tmp_path / 'det.pt2'), shape=EXPORT_SHAPE)


def test_graph_contract(toy_det_onnx):
    """Standard operators only, one input, the documented outputs and metadata."""
    import onnx
    path = toy_det_onnx
    proto = onnx.load(path)
    assert [i.name for i in proto.graph.input] == ['images']
    assert [o.name for o in proto.graph.output] == ['boxes', 'scores', 'labels', 'masks']
    assert {op.domain for op in proto.opset_import} <= {'', 'ai.onnx'}
    ops = {node.op_type for node in proto.graph.node}
    assert {'NonMaxSuppression', 'RoiAlign'} <= ops
    assert all(node.domain in ('', 'ai.onnx') for node in proto.graph.node)
    graph = OnnxModel(path)
    assert graph.metadata['task'] == 'detection' and graph.size_divisor == 32
    out = graph(images_for(CHECK_SHAPE))
    assert out['labels'].dtype.name == 'int64'
    assert out['masks'].shape[1:] == CHECK_SHAPE
    with pytest.raises(ExportError, match='multiples of 32'):
        graph(images_for((100, 128)))
    with pytest.raises(ExportError, match='one image at a time'):
        graph(images_for(CHECK_SHAPE, batch=2))
    with pytest.raises(Exception, match='Expected: 1'):  # the graph's batch axis is fixed to 1
        graph.session.run(None, {'images': images_for(CHECK_SHAPE, batch=2).numpy()})


QUERY_HEADS = ('/mask2former/', '/dino/')  # no graph for them yet: the tool says so


@pytest.mark.parametrize('config', one_per_family_fast(shipped_configs()))
def test_every_shipped_config_has_an_exportable_model(config):
    """Each shipped config's model (built without weights) wraps for export, whole and backbone;
    the toy tests above run the same wrappers end to end. Mask2Former and DINO export their
    backbone; the whole model is refused in one error naming --backbone-only."""
    cfg = load_config(str(REPO / config))
    model = build_model(cfg, device='meta')
    assert wrap(model, 'backbone').output_names == [
        f'feat{i}' for i in model.backbone.out_indices]
    if any(family in config for family in QUERY_HEADS):
        with pytest.raises(ExportError, match=r'cannot export this model: .*(Mask2Former|DINO)'
                                              r'.*--backbone-only'):
            wrap(model, task_of(cfg))
        return
    wrapper = wrap(model, task_of(cfg))
    assert wrapper.output_names == (['boxes', 'scores', 'labels', 'masks'] if
                                    cfg.default_scope == 'mmdet' else ['seg_logits'])


# ------------------------------------------------------------------ bad input to the tool
def test_shape_not_a_multiple_of_32(tool, tmp_path):
    with pytest.raises(ExportError, match=r'--shape 100 64: .*multiples of 32.* 128 64'):
        tool.main([TOY_SEG, 'none', '--out', str(tmp_path / 'a.onnx'), '--shape', '100', '64'])


@pytest.mark.slow  # trains briefly through tools/train.py (subprocess)
def test_checkpoint_of_another_model(tool, tmp_path, trained_seg):
    with pytest.raises(ExportError, match=r'does not fit the model of .*missing keys: \d+ .*'
                                          r'unexpected keys: \d+ \(decode_head'):
        tool.main([TOY_DET, str(trained_seg), '--out', str(tmp_path / 'a.onnx')])


@pytest.mark.slow  # trains briefly through tools/train.py (subprocess)
def test_mis_shaped_checkpoint(tool, tmp_path, trained_seg):
    """The same model with other sizes: mis-shaped keys are named, nothing half-loaded."""
    with pytest.raises(ExportError, match=r'mis-shaped .*decode_head.conv_seg.weight'):
        tool.main([TOY_SEG, str(trained_seg), '--out', str(tmp_path / 'a.onnx'),
                   '--cfg-options', 'model.decode_head.num_classes=7'])


def test_head_that_cannot_export(tool, tmp_path):
    with pytest.raises(ExportError, match='cannot export this model.*--backbone-only'):
        tool.main([TOY_DET, 'none', '--out', str(tmp_path / 'a.onnx'), '--cfg-options',
                   'model.roi_head.mask_head=None', 'model.roi_head.mask_roi_extractor=None'])


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
