"""ONNX export of the backbone, UperNet and (Cascade) Mask R-CNN: the graph's contract (any input
size, padding inside as the host's preprocessor pads, declared output shapes, metadata), the
graphs run in plain onnxruntime against the host's own inference on image files (random
weights here; trained ones and other models in test_host_equality.py). Bad input to
tools/export.py: test_export_refusals.py."""
import json

import numpy as np
import pytest
import torch
from deploy_cases import (
    EXPORT_SHAPE,
    QUERY_HEADS,
    TOY_CLASSES,
    TOY_DET,
    TOY_SEG,
    TOY_SEG_REL,
    V2,
    assert_equals_host,
)

from conftest import REPO, load_tool, one_per_family_fast, shipped_configs

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
from convnext_backbone.deploy.driver import refuse_slide, task_of  # noqa: E402
from convnext_backbone.deploy.metadata import (  # noqa: E402
    RULE_SYNTAX,
    class_names,
    resize_rule,
)
from convnext_backbone.deploy.preprocess import Preprocess  # noqa: E402
from convnext_backbone.deploy.verify import images_for, verify  # noqa: E402

ODD_SHAPE = (90, 133)  # not a multiple of anything the model strides or pads by


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
    return verify(config, checkpoint, out, cfg_options=cfg_options)


def test_backbone_alone(tmp_path):
    """The features of the image padded as mmdet's preprocessor pads it, for image files."""
    report = export_and_verify(tmp_path, TOY_DET, backbone_only=True)
    assert report['task'] == 'backbone', report
    assert_equals_host(report)
    assert max(r['max_abs_diff'] for r in report['images'].values()) < 1e-4, report


def test_export_leaves_the_model_in_eval_mode(tmp_path):
    """Exporting the wrapper must not switch the user's model to training (drop path on): the
    backbone gives the same features before and after the export."""
    from convnext_backbone.deploy.driver import export_onnx
    model = build_model(load_config(TOY_DET, {'model.backbone.drop_path_rate': 0.5}))
    image = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        before = model.backbone(image)
    export_onnx(wrap(model, 'backbone'), 'backbone', str(tmp_path / 'b.onnx'), (64, 64))
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        after = model.backbone(image)
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_upernet_random_weights(tool, tmp_path, capsys):
    """Through the tool: export, say what the graph cannot see, --verify against
    inference_model on generated image files."""
    tool.main([TOY_SEG, 'none', '--out', str(tmp_path / 'seg.onnx'), '--shape',
               *map(str, EXPORT_SHAPE), '--verify'])
    out = capsys.readouterr().out
    print(f'\n[deploy] {TOY_SEG_REL} via tools/export.py --verify:\n{out}')
    assert f'wrote {tmp_path / "seg.onnx"}' in out
    assert 'note: mmseg resizes seg_logits' in out
    lines = [line for line in out.splitlines() if line.startswith('image_')]
    assert len(lines) == 4 and all("'ok': True" in line for line in lines), out
    assert out.strip().endswith('verify: graph equals the host')


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_upernet_v2(tmp_path, v2_checkpoints):
    assert_equals_host(export_and_verify(tmp_path, TOY_SEG, str(v2_checkpoints[TOY_SEG]),
                                         cfg_options=V2))


@pytest.mark.slow  # another whole-model export
def test_upernet_that_pads_at_test_time(tmp_path):
    """A segmentor whose preprocessor pads at test time (test_cfg.size_divisor): padded in
    the graph, the padding cut off the logits, as mmseg does."""
    options = {'model.data_preprocessor.test_cfg': dict(size_divisor=32)}
    assert_equals_host(export_and_verify(tmp_path, TOY_SEG, cfg_options=options))


@pytest.fixture(scope='module')
def toy_det_onnx(tmp_path_factory):
    """The toy Mask R-CNN (random weights) exported once for the tests below."""
    return export(TOY_DET, None, str(tmp_path_factory.mktemp('det') / 'det.onnx'),
                  shape=EXPORT_SHAPE)


def test_mask_rcnn_random_weights(toy_det_onnx):
    assert_equals_host(verify(TOY_DET, None, toy_det_onnx))


@pytest.mark.slow  # another whole-model export; make test-fast keeps one per family
def test_mask_rcnn_v2(tmp_path, v2_checkpoints):
    assert_equals_host(export_and_verify(tmp_path, TOY_DET, str(v2_checkpoints[TOY_DET]),
                                         cfg_options=V2))


@pytest.mark.slow  # a whole-model export and comparison
def test_no_detections(tmp_path):
    """Images where nothing passes the score threshold: empty outputs, as in mmdet."""
    report = export_and_verify(tmp_path, TOY_DET, cfg_options={'model.test_cfg.rcnn.score_thr':
                                                               0.999})
    assert_equals_host(report, detections=False)
    assert all(r['count_graph'] == 0 for r in report['images'].values()), report
    out = OnnxModel(str(tmp_path / 'model.onnx'))(images_for(ODD_SHAPE))
    assert out['boxes'].shape == (0, 4) and out['masks'].shape == (0, 28, 28)


@pytest.mark.slow  # a whole-model export and comparison
def test_static_shape(tmp_path):
    """--static: the graph takes exactly the export size (and says so for any other)."""
    from convnext_backbone.deploy.reference import eager_seg_logits
    out = export(TOY_SEG, None, str(tmp_path / 'static.onnx'), shape=ODD_SHAPE, static=True)
    images = images_for(ODD_SHAPE)
    logits = OnnxModel(out)(images)['seg_logits']
    expected = eager_seg_logits(build_model(load_config(TOY_SEG)), images)
    assert np.abs(logits - expected.numpy()).max() < 1e-3
    with pytest.raises(ExportError, match='exported with --static'):
        OnnxModel(out)(images_for(EXPORT_SHAPE))
    said = OnnxModel(out).metadata['input']  # what it takes, and what to do with other sizes
    assert said.startswith('images (1, 3, 90, 133) float32') and 'exactly 90x133' in said
    assert 'do not pad' in said and 'without --static for any H and W' in said


@pytest.mark.slow  # torch.export of a whole segmentor: 10-20 s
@pytest.mark.parametrize('backbone_only', [False, True], ids=['upernet', 'backbone'])
def test_torch_export_program(tmp_path, backbone_only):
    """--out FILE.pt2: a torch.export program with the same contract (H, W, batch dynamic)."""
    from convnext_backbone.deploy.reference import eager_seg_logits
    path = export(TOY_SEG, None, str(tmp_path / 'seg.pt2'), shape=EXPORT_SHAPE,
                  backbone_only=backbone_only)
    program = torch.export.load(path).module()
    model = build_model(load_config(TOY_SEG))
    images = images_for((96, 160), batch=3)  # multiples of 32 (torch.export's limit)
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
    with pytest.raises(ExportError, match=r'--shape 90 133: a \.pt2 program takes H and W that '
                                          r'are multiples of 32.* --shape 96 160 .*ONNX'):
        export(TOY_SEG, None, str(tmp_path / 'seg.pt2'), shape=ODD_SHAPE)


def test_reference_pair_from_the_val_set(toy_det_onnx, toy_root, tmp_path):
    """--reference without --verify-image: an image of the config's val set, the graph's input
    as the host's pipeline makes it, the outputs the graph gives on it, the manifest."""
    from convnext_backbone.deploy.reference_pair import reference_image, write_reference
    cfg = load_config(TOY_DET, {'val_dataloader.dataset.data_root': f'{toy_root}/coco/'})
    image = reference_image(cfg)
    assert image.startswith(f'{toy_root}/coco/val2017/'), image
    manifest = write_reference(toy_det_onnx, cfg, image, str(tmp_path / 'ref'))
    folder = tmp_path / 'ref'
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ['image.jpg', 'images.npy', 'boxes.npy', 'scores.npy', 'labels.npy', 'masks.npy',
         'metadata.json', 'reference.json'])
    assert (folder / 'image.jpg').read_bytes() == open(image, 'rb').read()
    assert {**json.loads((folder / 'reference.json').read_text()), 'replaced': False} == manifest
    outputs = OnnxModel(toy_det_onnx)(np.load(folder / 'images.npy'))
    for name, spec in manifest['outputs'].items():
        assert np.array_equal(np.load(folder / spec['file']), outputs[name]), name
    assert manifest['outputs']['labels']['tolerance'] == 0
    assert manifest['outputs']['boxes']['tolerance'] == 0.05
    assert manifest['input_size'] == {'height': 128, 'width': 128}  # 64x64 -> the toy resize
    (folder / 'seg_logits.npy').write_text('an array of an earlier pair')
    earlier = json.loads((folder / 'reference.json').read_text())
    earlier['outputs']['seg_logits'] = {'file': 'seg_logits.npy'}
    (folder / 'reference.json').write_text(json.dumps(earlier))
    again = write_reference(toy_det_onnx, cfg, image, str(folder))  # the earlier pair goes
    assert again['replaced'] and not (folder / 'seg_logits.npy').exists()


def test_reference_needs_an_onnx_graph_and_an_image(tool, tmp_path):
    with pytest.raises(ExportError, match=r'--reference records an ONNX graph .*FILE\.onnx'):
        tool.main([TOY_SEG, 'none', '--out', str(tmp_path / 'a.pt2'), '--reference', 'ref'])
    with pytest.raises(ExportError, match=r"--reference needs an image file: the config's val "
                                          r'set could not be read; give one with --verify-image'):
        tool.main([TOY_DET, 'none', '--out', str(tmp_path / 'a.onnx'), '--reference', 'ref',
                   '--cfg-options', f'val_dataloader.dataset.data_root={tmp_path}/nowhere/'])
    assert not (tmp_path / 'a.onnx').exists()  # refused before the export


def test_graph_contract(toy_det_onnx):
    """Standard operators only, one input of any size, the outputs with their declared shapes,
    the metadata a user needs to prepare the input and read the outputs."""
    import onnx
    proto = onnx.load(toy_det_onnx)
    assert [i.name for i in proto.graph.input] == ['images']
    declared = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]
                for o in proto.graph.output}
    assert declared == {'boxes': ['num_dets', 4], 'scores': ['num_dets'],
                        'labels': ['num_dets'], 'masks': ['num_dets', 28, 28]}
    assert {op.domain for op in proto.opset_import} <= {'', 'ai.onnx'}
    assert {'NonMaxSuppression', 'RoiAlign'} <= {node.op_type for node in proto.graph.node}
    assert all(node.domain in ('', 'ai.onnx') for node in proto.graph.node)
    graph = OnnxModel(toy_det_onnx)
    meta = graph.metadata
    assert meta['task'] == 'detection' and json.loads(meta['classes']) == TOY_CLASSES
    resize = json.loads(meta['resize'])
    assert {k: resize.pop(k) for k in ('rule_syntax', 'type')} == dict(
        type='Resize', rule_syntax=RULE_SYNTAX)  # the rule: tests/deploy/test_metadata.py
    assert resize == dict(scale=[128, 213], keep_ratio=True, interpolation='bilinear',
                          backend='cv2', rule='f = min(213 / max(h, w), 128 / min(h, w)); '
                          'new_w = int(w * f + 0.5); new_h = int(h * f + 0.5); '
                          'scale_factor = (new_w / w, new_h / h)',
                          resample='cv2.resize(image, (new_w, new_h), '
                          'interpolation=cv2.INTER_LINEAR)')
    assert meta['input'].startswith('images (N, 3, H, W) float32') and \
        meta['input'].endswith('any H and W') and 'static_shape' not in meta
    assert (meta['score_thr'], meta['nms_iou'], meta['max_per_img'],
            meta['mask_thr_binary']) == ('0.05', '0.5', '20', '0.5')
    assert (meta['pad_size_divisor'], meta['pad_value'], meta['min_input_size'],
            meta['bgr_to_rgb']) == ('32', '0.0', '1', 'true')
    assert json.loads(meta['mean']) == [123.675, 116.28, 103.53]
    for shape in (ODD_SHAPE, (1, 1), (33, 47)):  # any size: the graph pads
        out = graph(images_for(shape))
        assert out['labels'].dtype.name == 'int64' and out['masks'].shape[1:] == (28, 28)
        assert out['boxes'].shape[1:] == (4,)
        if len(out['boxes']):  # clipped to the unpadded image, not the padded one
            assert out['boxes'][:, 2].max() <= shape[1] and out['boxes'][:, 3].max() <= shape[0]
    with pytest.raises(ExportError, match='one image at a time'):
        graph(images_for(ODD_SHAPE, batch=2))
    with pytest.raises(ExportError, match=r'\(N, 3, H, W\)'):
        graph(np.zeros((1, 4, 64, 64), np.float32))
    with pytest.raises(Exception, match='Expected: 1'):  # the graph's batch axis is fixed to 1
        graph.session.run(None, {'images': images_for(ODD_SHAPE, batch=2).numpy()})


@pytest.mark.parametrize('config, options', [
    (TOY_DET, None), (TOY_SEG, None),
    (TOY_SEG, {'model.data_preprocessor.test_cfg': dict(size_divisor=32)}),
    (TOY_SEG, {'model.data_preprocessor.test_cfg': dict(size=(160, 96))})],
    ids=['mmdet', 'mmseg', 'mmseg-size-divisor', 'mmseg-size'])
def test_preprocessing_equals_the_hosts_preprocessor(config, options):
    """Channel swap, normalisation and padding in the graph's module against the host's own
    data preprocessor at test time, on an image of an odd size."""
    cfg = load_config(config, options)
    model = build_model(cfg)
    if cfg.default_scope == 'mmseg':
        from mmseg.structures import SegDataSample as Sample
    else:
        from mmdet.structures import DetDataSample as Sample
    image = images_for(ODD_SHAPE).round()
    with torch.no_grad():
        expected = model.data_preprocessor(dict(inputs=[image[0].to(torch.uint8)],
                                                data_samples=[Sample()]), False)['inputs']
        ours = Preprocess(model.data_preprocessor)(image)
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    assert (ours - expected).abs().max() < 1e-5



@pytest.mark.parametrize('config', one_per_family_fast(shipped_configs()))
def test_every_shipped_config_has_an_exportable_model(config):
    """Each shipped config's model (built without weights) wraps for export, whole and backbone,
    and its metadata has the class names and the resize rule; sliding-window configs are
    refused with the option that exports them. Mask2Former and DINO export their backbone; the
    whole model is refused in one error naming --backbone-only. The toy tests run the same code
    end to end."""
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
    detection = cfg.default_scope == 'mmdet'
    assert wrapper.output_names == (['boxes', 'scores', 'labels', 'masks'] if detection
                                    else ['seg_logits'])
    names = class_names(cfg)
    heads = cfg.model.roi_head.bbox_head if detection else cfg.model.decode_head
    num_classes = (heads[-1] if isinstance(heads, list) else heads)['num_classes']
    assert len(names) == num_classes and all(names), names[:3]  # COCO 80, ADE20K 150, ...
    rule = resize_rule(cfg)
    assert rule['keep_ratio'] is True and len(rule['scale']) == 2, rule
    if not detection and cfg.model.test_cfg.get('mode') == 'slide':
        with pytest.raises(ExportError, match='model.test_cfg.mode=whole'):
            refuse_slide(cfg, config)
