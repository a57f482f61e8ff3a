"""``tools/export.py --quantize``: the int8 graphs next to the fp32 one run in plain onnxruntime
with integer kernels, keep the contract and the metadata, stay close to the fp32 graph, and are
calibrated on the images the config evaluates on; impossible requests are one error line,
before the export."""
import re
import shutil
from collections import Counter

import numpy as np
import pytest
from deploy_cases import EXPORT_SHAPE, TOY_DET, TOY_SEG
from doc_commands import doc_argv, project_folder

from conftest import load_tool

ort = pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')

from convnext_backbone.deploy import ExportError, OnnxModel  # noqa: E402
from convnext_backbone.deploy.calibration import folder_images, spread, val_images  # noqa: E402
from convnext_backbone.deploy.driver import load_config  # noqa: E402
from convnext_backbone.deploy.quant_report import layer_sqnr, sqnr_db  # noqa: E402
from convnext_backbone.deploy.quantize import KEEP_FP32, fp32_nodes, quantize_graph  # noqa: E402
from convnext_backbone.deploy.verify import images_for, write_images  # noqa: E402

INTEGER_OPS = {'MatMulInteger', 'DynamicQuantizeLinear', 'ConvInteger', 'QLinearConv',
               'QLinearMatMul', 'QGemm', 'QuantizeLinear', 'DequantizeLinear'}


@pytest.fixture(scope='module')
def tool():
    return load_tool('export')


def ade_options(toy_root):
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    return [f'{loader}.dataset.data_root={ade}' for loader in ('val_dataloader', 'test_dataloader')]


def kernels(path, tmp_path):
    """The ops onnxruntime runs after its graph optimisations (where Q/DQ pairs fuse around
    a layer into one integer kernel), by op type, and the names of the float layers left."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / 'optimized.onnx')
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    nodes = onnx.load(options.optimized_model_filepath).graph.node
    floats = [n.name for n in nodes if n.op_type in ('Conv', 'FusedConv', 'MatMul', 'FusedMatMul',
                                                     'Gemm', 'FusedGemm')]
    return Counter(n.op_type for n in nodes), floats


# docs/deployment.md, "int8 graphs": run as written in the test's folder (CONFIG and CHECKPOINT
# filled in), shrunk through documented options: --shape, --calib-images, --cfg-options
STATIC = 'python tools/export.py CONFIG CHECKPOINT --out model.onnx --quantize int8'
STATIC_OWN_IMAGES = ('python tools/export.py CONFIG CHECKPOINT --out model.onnx --quantize int8 '
                     '--calib-dir my_images/ --calib-images 32')
DYNAMIC = 'python tools/export.py CONFIG CHECKPOINT --out model.onnx --quantize int8-dynamic'
SCORE_INT8 = ('python tools/test_onnx.py configs/toy/maskrcnn_convnext_toy_coco.py '
              'maskrcnn.int8.onnx --threads 2')


def docs_export(tool, argv, *more):
    """The docs' export command (``argv`` from ``doc_argv``) in-process: its arguments after
    ``tools/export.py``, a small traced size, ``more``."""
    python, script, *args = argv
    assert script == 'tools/export.py'
    tool.main([*args, '--shape', *map(str, EXPORT_SHAPE), *more])


@pytest.mark.slow  # a calibrated int8 export (about 4 s)
def test_static_int8_upernet_runs_integer_kernels(tool, toy_root, tmp_path, capsys,
                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs_export(tool, doc_argv(STATIC, CONFIG=TOY_SEG, CHECKPOINT='none'), '--calib-images', '2',
                '--cfg-options', *ade_options(toy_root))
    out, int8_path = tmp_path / 'model.onnx', tmp_path / 'model.int8.onnx'
    printed = capsys.readouterr().out
    assert 'wrote model.onnx' in printed and 'wrote model.int8.onnx' in printed, printed
    report = re.search(r'int8 vs fp32 SQNR: seg_logits ([\d.]+) dB; lowest layers: (\S+) '
                       r'([\d.]+) dB', printed)
    assert report and float(report[1]) > 20 and float(report[3]) > 15, printed

    fp32_ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert not INTEGER_OPS & set(fp32_ops), fp32_ops
    ops, floats = kernels(int8_path, tmp_path)
    # every Conv and MatMul runs as an integer kernel but the classifier and the PPM's
    # pooling products (two computed tensors: 4 scales x 2 axes)
    pooling = [name for name in floats if 'psp_modules' in name]
    assert len(pooling) == 8 and len(floats) == 9 and 'conv_seg' in (set(floats) - set(pooling)
                                                                      ).pop(), floats
    assert ops['QLinearConv'] == fp32_ops['Conv'] - 1, ops
    assert ops['QLinearMatMul'] == fp32_ops['MatMul'] - len(pooling), ops

    fp32, int8 = OnnxModel(str(out)), OnnxModel(str(int8_path))
    note = int8.metadata.pop('quantization')
    assert note.startswith('int8: onnxruntime static') and "2 images (the config's val set)" in \
        note, note
    assert int8.metadata == fp32.metadata
    for shape in ((90, 133), (150, 227)):  # sizes the graph pads: the contract holds
        images = images_for(shape)
        a, b = fp32(images)['seg_logits'], int8(images)['seg_logits']
        assert b.shape == a.shape == (1, 5, *shape)
        assert not np.array_equal(a, b)  # it is another computation
        ratio, agreement = sqnr_db(a, b), (a.argmax(1) == b.argmax(1)).mean()
        print(f'\n[int8 static] {shape}: SQNR {ratio:.1f} dB, argmax agreement {agreement:.4f}')
        # 8-bit noise on random weights and random pixels: about 20 dB; 10 dB = broken ranges
        assert ratio > 12 and agreement >= 0.9, (shape, ratio, agreement)


def test_dynamic_int8_needs_no_calibration(tool, tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, dynamic = tmp_path / 'model.onnx', tmp_path / 'model.int8-dynamic.onnx'
    dynamic.write_text('an earlier run')
    docs_export(tool, doc_argv(DYNAMIC, CONFIG=TOY_SEG, CHECKPOINT='none'), '--cfg-options',
                'val_dataloader.dataset.data_root=/nonexistent')  # no val set is read
    printed = capsys.readouterr().out
    assert 'wrote model.onnx\n' in printed, printed  # a new file
    assert not [r for r in caplog.records if 'pre-processing' in r.getMessage()]  # no noise
    assert 'wrote model.int8-dynamic.onnx (replacing the file that was there)' in printed, printed
    ops = Counter(n.op_type for n in onnx.load(str(dynamic)).graph.node)
    fp32_ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    # the weights' MatMuls (the PPM's pooling matrices are computed, so they stay float)
    assert ops['MatMulInteger'] > 0 and ops['MatMulInteger'] + ops['MatMul'] == \
        fp32_ops['MatMul'] and ops['Conv'] == fp32_ops['Conv'], ops
    # 7-bit weights (reduce_range, whatever CPU quantized): no pair of uint8 x int8 products
    # saturates the int16 sums of CPUs without VNNI, so every x86 CPU computes the same
    weights = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(dynamic)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    fp32, int8 = OnnxModel(str(out)), OnnxModel(str(dynamic))
    assert int8.metadata.pop('quantization').startswith('int8-dynamic: onnxruntime dynamic')
    assert int8.metadata == fp32.metadata
    images = images_for((90, 133))
    a, b = fp32(images)['seg_logits'], int8(images)['seg_logits']
    assert sqnr_db(a, b) > 20 and (a.argmax(1) == b.argmax(1)).mean() >= 0.99


@pytest.mark.slow  # a detector export, calibration and two graphs (~40 s)
def test_static_int8_detector(tool, toy_root, tmp_path, capsys, monkeypatch):
    """The toy Mask R-CNN (random weights, every proposal kept), calibrated on a folder of the
    user's images (the docs' --calib-dir command): backbone, neck, RPN and RoI heads in int8,
    their output layers fp32; the detections keep the contract; the docs' tools/test_onnx.py
    line scores the int8 graph with the config's own test set and evaluator."""
    project = project_folder(tmp_path, toy_root)
    monkeypatch.chdir(project)
    shutil.copytree(toy_root / 'coco' / 'val2017', project / 'my_images')
    docs_export(tool, doc_argv(STATIC_OWN_IMAGES, CONFIG=TOY_DET, CHECKPOINT='none'),
                '--cfg-options',
                'model.test_cfg.rcnn.score_thr=0.0')
    out, int8_path = tmp_path / 'model.onnx', tmp_path / 'model.int8.onnx'
    assert '2 images (my_images/)' in OnnxModel(str(int8_path)).metadata['quantization']
    ops, floats = kernels(int8_path, tmp_path)
    fp32_ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    # every Conv but the 5 levels' RPN cls/reg and the mask logits; the 2 shared FCs
    assert ops['QLinearConv'] == fp32_ops['Conv'] - 11 and ops['QGemm'] == 2, ops
    assert ops['QLinearMatMul'] == fp32_ops['MatMul'] > 0, ops
    kept = fp32_nodes(onnx.load(str(out)))
    heads = Counter(n.split('/')[-2].split('_')[0] + '_' + n.split('/')[-2].split('_')[1]
                    for n in kept)  # rpn_cls_3 -> rpn_cls: the RPN head runs once per level
    assert heads == {'conv_logits': 1, 'fc_cls': 1, 'fc_reg': 1, 'rpn_cls': 5, 'rpn_reg': 5}, kept
    assert len(floats) == len(kept), floats  # nothing else stayed float
    fp32, int8 = OnnxModel(str(out)), OnnxModel(str(int8_path))
    images = images_for((150, 227))
    layers = dict(layer_sqnr(str(out), str(int8_path), images.numpy()))
    # backbone, neck and RPN compared; the RoI heads follow each graph's own proposals
    assert any('backbone' in n for n in layers) and any('rpn_conv' in n for n in layers)
    assert not any('bbox_heads' in n or 'mask_heads' in n or n.startswith('output')
                   for n in layers), layers
    assert min(layers.values()) > 15, layers
    a, b = fp32(images), int8(images)
    assert b['boxes'].shape[1:] == (4,) and b['masks'].shape[1:] == (28, 28)
    # score_thr 0: every image gives max_per_img detections
    assert len(b['boxes']) == len(a['boxes']) == int(fp32.metadata['max_per_img'])
    assert (b['boxes'] >= 0).all() and (b['boxes'][:, 2] <= 227).all() and \
        (b['boxes'][:, 3] <= 150).all()
    shutil.copy(int8_path, project / 'maskrcnn.int8.onnx')
    capsys.readouterr()
    python, script, *args = doc_argv(SCORE_INT8)  # in-process: its arguments, on the toy set
    load_tool('test_onnx').main([*args, '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.0'])
    assert re.search(r'coco/bbox_mAP: -?\d', capsys.readouterr().out)


def test_detector_that_detects_nothing_cannot_be_calibrated(tmp_path):
    """An untrained detector with its real threshold finds nothing: the mask head would see
    no RoI, so it cannot be calibrated; one line says why and what to do."""
    from convnext_backbone.deploy import export
    out = export(TOY_DET, None, str(tmp_path / 'det.onnx'), shape=EXPORT_SHAPE,
                 cfg_options={'model.test_cfg.rcnn.score_thr': 1.0})
    with pytest.raises(ExportError, match=r'detects nothing on any of the 2 calibration images.*'
                                          r'load the trained checkpoint') as error:
        quantize_graph(out, 'int8', calibration=[images_for((64, 96)).numpy()] * 2)
    assert '\n' not in str(error.value)
    assert not (tmp_path / 'det.int8.onnx').exists()


def test_calibration_images_spread_over_the_set(toy_root, tmp_path):
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread(list(range(3)), 16) == [0, 1, 2]
    assert spread(list(range(10)), 1) == [0]
    cfg = load_config(TOY_DET, {'val_dataloader.dataset.data_root': f"{toy_root / 'coco'}/"})
    paths = val_images(cfg, 16)
    listed = sorted(p.name for p in (toy_root / 'coco' / 'val2017').iterdir())
    assert sorted(p.rsplit('/', 1)[-1] for p in paths) == listed  # the whole (2-image) val set
    folder = tmp_path / 'mine'
    folder.mkdir()
    written = write_images(str(folder), [(40, 50), (50, 40), (33, 47)], suffix='.png')
    (folder / 'notes.txt').write_text('not an image')
    assert folder_images(str(folder), 2) == [sorted(written)[0], sorted(written)[-1]]


@pytest.mark.parametrize('args, message', [
    (['--out', 'a.pt2', '--quantize', 'int8'], r'--quantize int8 quantizes ONNX graphs .*'
                                               r'a\.pt2: export to FILE\.onnx'),
    (['--out', 'a.onnx', '--quantize', 'int4'], r'--quantize int4: the modes are int8, '
                                                r'int8-dynamic'),
    (['--out', 'a.onnx', '--calib-dir', '.'], r'--calib-dir calibrates an int8 graph: add '
                                              r'--quantize int8'),
    (['--out', 'a.onnx', '--quantize', 'int8-dynamic', '--calib-dir', '.'],
     r'--quantize int8-dynamic needs no calibration, so --calib-dir would be ignored'),
    (['--out', 'a.onnx', '--quantize', 'int8', '--calib-dir', 'a.missing'],
     r'--calib-dir .*a\.missing is not a folder'),
    (['--out', 'a.onnx', '--quantize', 'int8', '--calib-dir', '{empty}'],
     r'--calib-dir .*empty holds no image file'),
    (['--out', 'a.onnx', '--quantize', 'int8', '--calib-images', '0'], r'--calib-images 0: '
                                                                       r'give at least 1'),
    (['--out', 'a.onnx', '--quantize', 'int8', '--cfg-options',
      'val_dataloader.dataset.data_root=/nonexistent/'],
     r"the config's val set could not be read to calibrate .*give --calib-dir FOLDER .* or "
     r'--quantize int8-dynamic'),
], ids=['pt2', 'unknown-mode', 'calib-without-int8', 'calib-with-dynamic', 'calib-missing',
        'calib-empty', 'zero-images', 'no-val-set'])
def test_impossible_quantization_is_refused_before_export(tool, tmp_path, args, message):
    (tmp_path / 'empty').mkdir()
    args = [str(tmp_path / a) if a.startswith('a.') else
            a.replace('{empty}', str(tmp_path / 'empty')) for a in args]
    with pytest.raises(ExportError, match=message) as error:
        tool.main([TOY_DET, 'none', *args])
    assert '\n' not in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ['empty']  # nothing written


def test_graph_that_cannot_be_quantized(tmp_path):
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'not a graph')
    with pytest.raises(ExportError, match=r'quantizing .*broken\.onnx to int8-dynamic failed .*'
                                          'fp32 graph is unaffected') as error:
        quantize_graph(str(broken), 'int8-dynamic')
    assert '\n' not in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ['broken.onnx']  # nor a temporary file


def test_sqnr_by_hand():
    ones = np.ones(4, np.float32)
    assert sqnr_db(ones, np.array([1, 1, 1, 0], np.float32)) == pytest.approx(10 * np.log10(4))
    assert sqnr_db(ones * 10, ones * 10 + 0.1) == pytest.approx(40.0)
    assert sqnr_db(ones, ones) == float('inf')


def test_fp32_layers_are_the_heads_output_layers():
    """The patterns name real layers of the shipped heads (mmdet/mmseg attribute names)."""
    import re
    names = ['/decode_head/conv_seg/Conv', '/auxiliary_head/conv_seg/Conv',
             '/bbox_heads.2/fc_cls/Gemm', '/bbox_heads.0/fc_reg/Gemm',
             '/proposals/head/rpn_cls/Conv', '/proposals/head/rpn_reg_4/Conv',
             '/mask_heads.0/conv_logits/Conv']
    others = ['/decode_head/fpn_bottleneck/conv/Conv', '/bbox_heads.0/shared_fcs.1/Gemm',
              '/backbone/stages.0/stages.0.0/pwconv1/MatMul', '/mask_heads.0/convs.3/conv/Conv',
              '/proposals/head/rpn_conv_2/Conv']
    hits = lambda name: any(re.search(p, name) for p in KEEP_FP32)  # noqa: E731
    assert all(map(hits, names)) and not any(map(hits, others))
