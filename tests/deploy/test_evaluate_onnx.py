"""``tools/test_onnx.py``: an exported graph scored with the config's own test set, pipeline and
evaluator gives tools/test.py's numbers for the same checkpoint (COCO bbox/segm AP, mIoU), on
images the test resize brings to 100x100 (the detector pads them to 128x128 inside the graph;
the UperNet sees 100x100 as it is); its refusals are one line each.

Tolerance: the graph's boxes differ from eager mmdet's by < 1e-3 px and its scores and logits by
< 1e-4 (tests/deploy/test_host_equality.py), so the metrics are equal up to the hosts' own
rounding: CocoMetric rounds AP to 3 decimals, IoUMetric rounds to 2 decimals of a percent;
one unit of that rounding is allowed (a value sitting on a rounding edge).
"""
import glob
import json
import re
import shutil

import numpy as np
import pytest
import torch
from deploy_cases import EXPORT_SHAPE, TOY_DET, TOY_DET_REL, TOY_SEG, TOY_SEG_REL
from doc_commands import doc_argv, project_folder

from conftest import load_tool, run_tool

pytest.importorskip('onnxruntime')

from convnext_backbone.cli import run_tool as run_in_tool  # noqa: E402
from convnext_backbone.deploy import (  # noqa: E402
    ExportError,
    build_model,
    export,
    load_config,
    load_weights,
)
from convnext_backbone.deploy.evaluate import (  # noqa: E402
    check_graph_fits,
    evaluate,
    open_graph,
)

# The toy sets' 64x64 images -> 100x100 after the test resize: not a multiple of 32.
RESIZE = {'mmdet': 'test_dataloader.dataset.pipeline.1.scale=(100,150)',
          'mmseg': 'test_dataloader.dataset.pipeline.1.scale=(150,100)'}
COCO_DECIMALS, MIOU_DECIMALS = 3, 2


def random_checkpoint(config, path, seed=0):
    """Random weights of ``config``'s model as a checkpoint file (what the tools load)."""
    model = build_model(load_config(config), seed=seed)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def options_dict(options):
    """``KEY=VALUE`` strings as --cfg-options parses them."""
    from mmengine.config import DictAction
    parsed = {}
    for item in options:
        key, value = item.split('=', 1)
        parsed[key] = DictAction._parse_iterable(value)
    return parsed


def tools_test_metrics(config, checkpoint, work_dir, options):
    """tools/test.py run in-process; the metrics the Runner wrote to its JSON log."""
    load_tool('test').main([config, checkpoint, '--work-dir', str(work_dir),
                            '--cfg-options', *options])
    logs = [p for p in glob.glob(f'{work_dir}/*/*.json') if not p.endswith('config.json')]
    return json.loads(open(logs[-1]).read().splitlines()[-1])


def eager_detections_as_ground_truth(config, checkpoint, options, coco, out, per_image=5):
    """A COCO annotation file for the toy val images whose objects are the eager model's top
    ``per_image`` detections (boxes and masks): random weights score near zero AP against the
    real shapes, so the AP comparison would hold whatever the boxes were; against these it is
    high, and any error in the rescale or the mask paste lowers it."""
    from mmdet.apis import inference_detector
    from pycocotools import mask as mask_util
    cfg = load_config(config, options_dict(options))
    model = build_model(cfg)
    load_weights(model, checkpoint, config)
    model.cfg = cfg
    data = json.loads((coco / 'annotations/instances_val2017.json').read_text())
    category = {c['name']: c['id'] for c in data['categories']}
    classes = cfg.test_dataloader.dataset.metainfo['classes']
    data['annotations'] = []
    for image in data['images']:
        pred = inference_detector(model, str(coco / 'val2017' / image['file_name'])).pred_instances
        for box, label, mask in list(zip(pred.bboxes.tolist(), pred.labels.tolist(),
                                         pred.masks.numpy()))[:per_image]:
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode()
            x1, y1, x2, y2 = box
            data['annotations'].append(dict(
                id=len(data['annotations']) + 1, image_id=image['id'], iscrowd=0,
                category_id=category[classes[label]], bbox=[x1, y1, x2 - x1, y2 - y1],
                area=(x2 - x1) * (y2 - y1), segmentation=rle))
    out.write_text(json.dumps(data))
    return str(out)


def assert_equal_metrics(graph, host, keys, decimals):
    for key in keys:
        assert abs(graph[key] - host[key]) <= 10 ** -decimals + 1e-9, (key, graph, host)


@pytest.mark.slow  # tools/test.py in-process, two exports
def test_detector_ap_equals_tools_test(toy_root, tmp_path):
    coco = toy_root / 'coco'
    checkpoint = random_checkpoint(TOY_DET, tmp_path / 'det.pth')
    options = [f'test_dataloader.dataset.data_root={coco}/', RESIZE['mmdet']]
    ann = eager_detections_as_ground_truth(TOY_DET, checkpoint, options, coco,
                                           tmp_path / 'eager_as_gt.json')
    options.append(f'test_evaluator.ann_file={ann}')
    host = tools_test_metrics(TOY_DET_REL, checkpoint, tmp_path / 'eager', options)
    onnx_path = export(TOY_DET, checkpoint, str(tmp_path / 'det.onnx'), shape=EXPORT_SHAPE)
    cfg = load_config(TOY_DET, options_dict(options))
    graph = open_graph(onnx_path)
    check_graph_fits(cfg, graph, TOY_DET, onnx_path)
    metrics = evaluate(cfg, graph)
    keys = [f'coco/{kind}_mAP{s}' for kind in ('bbox', 'segm') for s in ('', '_50', '_75')]
    assert host['coco/bbox_mAP'] > 0.5 and host['coco/segm_mAP'] > 0.5, host  # informative
    assert_equal_metrics(metrics, host, keys, COCO_DECIMALS)
    other = load_config(TOY_DET, {'model.test_cfg.rcnn.score_thr': 0.3})
    with pytest.raises(ExportError, match=r'exported with model\.test_cfg\.rcnn\.score_thr=0\.05, '
                       r'.* sets 0\.3: .*--cfg-options model\.test_cfg\.rcnn\.score_thr=0\.05'):
        check_graph_fits(other, graph, TOY_DET, onnx_path)


@pytest.fixture(scope='module')
def seg_case(toy_root, tmp_path_factory):
    """Random toy UperNet weights, their graph, and the options pointing at the toy set."""
    folder = tmp_path_factory.mktemp('seg_eval')
    checkpoint = random_checkpoint(TOY_SEG, folder / 'seg.pth')
    onnx_path = export(TOY_SEG, checkpoint, str(folder / 'seg.onnx'), shape=EXPORT_SHAPE)
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    return dict(checkpoint=checkpoint, graph=onnx_path,
                options=[f'test_dataloader.dataset.data_root={ade}', RESIZE['mmseg']])


# docs/benchmarks.md's line that scores the demo's UperNet graph, run as written in a project
# folder whose work_dirs/demo_upernet holds this test's graph (its toy set, its test resize)
SCORE_SEG = ('python tools/test_onnx.py configs/toy/upernet_convnext_toy_ade20k.py '
             'work_dirs/demo_upernet/upernet_toy.onnx --threads 2 --work-dir '
             'work_dirs/demo_upernet/onnx')


@pytest.mark.slow  # the tool as a command (subprocess) and tools/test.py in-process
def test_segmentor_miou_equals_tools_test_through_the_tool(seg_case, toy_root, tmp_path):
    options = seg_case['options']
    host = tools_test_metrics(TOY_SEG_REL, seg_case['checkpoint'], tmp_path / 'eager', options)
    project = project_folder(tmp_path / 'project', toy_root)
    (project / 'work_dirs' / 'demo_upernet').mkdir(parents=True)
    shutil.copy(seg_case['graph'], project / 'work_dirs' / 'demo_upernet' / 'upernet_toy.onnx')
    python, *command = doc_argv(SCORE_SEG)
    proc = run_tool(*command, '--cfg-options', RESIZE['mmseg'], cwd=project)
    assert 'graph: work_dirs/demo_upernet/upernet_toy.onnx (segmentation; onnxruntime' in \
        proc.stdout, proc.stdout
    assert 'graph precision fp32' in proc.stdout
    assert re.search(r'onnx\(test\) \[\d+/\d+\] +aAcc: [\d.]+ +mIoU: [\d.]+', proc.stdout)
    record = json.loads(open(glob.glob(
        f'{project}/work_dirs/demo_upernet/onnx/upernet_toy.*.json')[0]).read())
    assert 0 < host['mIoU'] < 100, host  # random weights: some classes right, not all
    assert_equal_metrics(record['metrics'], host, ('aAcc', 'mIoU', 'mAcc'), MIOU_DECIMALS)


def one_error_line(capsys, argv):
    """tools/test_onnx.py's main under the tools' entry point: exit 1, one stderr line."""
    tool = load_tool('test_onnx')
    with pytest.raises(SystemExit) as exit_info:
        run_in_tool(lambda: tool.main(argv), extra_errors=(ExportError,))
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    return lines[0]


def test_missing_graph_is_one_line(capsys, tmp_path):
    line = one_error_line(capsys, [TOY_DET, str(tmp_path / 'nowhere.onnx')])
    assert 'nowhere.onnx does not exist' in line and 'tools/export.py' in line


@pytest.mark.slow  # on the exported toy UperNet (the module's export, about 5 s)
def test_graph_of_another_task_or_setting_is_refused(seg_case, capsys, toy_root):
    line = one_error_line(capsys, [TOY_DET, seg_case['graph']])
    assert 'is a segmentation graph, but' in line and 'is a detection config' in line
    assert 'upernet_convnext_toy_ade20k.py' in line  # the config to use instead
    slide = ['model.test_cfg.mode=slide', 'model.test_cfg.crop_size=(64,64)',
             'model.test_cfg.stride=(32,32)']
    line = one_error_line(capsys, [TOY_SEG, seg_case['graph'], '--cfg-options', *slide])
    assert 'model.test_cfg.mode=slide' in line and 'model.test_cfg.mode=whole' in line
    line = one_error_line(capsys, [TOY_SEG, seg_case['graph'], '--cfg-options',
                                   "test_dataloader.dataset.metainfo.classes=['a','b']"])
    assert 'predicts 5 classes (sky, ground, rectangle, ellipse, ...)' in line
    assert 'has 2 (a, b)' in line
