"""tools/test.py --out: results of an earlier test are never replaced silently, and new ones
arrive whole or not at all (cli.results). The results are written by the hosts' own writers
(mmdet's DumpDetResults, mmseg's IoUMetric with output_dir) inside ``written_atomically``,
as the test tool runs them; the refusal through the tool itself, in process."""
import pickle

import pytest
import torch
from advice import advised_items
from mmengine.config import Config
from mmengine.registry import init_default_scope

from convnext_backbone.cli import results
from convnext_backbone.cli.results import ResultsExistError

from conftest import REPO, load_tool

TOY_DET = str(REPO / 'configs' / 'toy' / 'maskrcnn_convnext_toy_coco.py')


def det_cfg():
    return Config(dict(default_scope='mmdet', test_evaluator=dict(type='CocoMetric')))


def seg_cfg():
    return Config(dict(default_scope='mmseg', test_evaluator=dict(type='IoUMetric')))


def run_det_test(cfg, marker):
    """What the test run does with --out: mmdet's DumpDetResults dumps the predictions."""
    init_default_scope('mmdet')
    from mmdet.evaluation.metrics import DumpDetResults
    dump = [m for m in cfg.test_evaluator if m['type'] == 'DumpDetResults'][0]
    metric = DumpDetResults(out_file_path=dump['out_file_path'])
    metric.compute_metrics([dict(img_id=marker)])


def run_seg_test(cfg, names):
    """mmseg's IoUMetric with output_dir writes one label map per image."""
    init_default_scope('mmseg')
    from mmseg.evaluation import IoUMetric
    metric = IoUMetric(output_dir=cfg.test_evaluator['output_dir'], format_only=True)
    metric.dataset_meta = dict(classes=('a', 'b'), label_map=None, reduce_zero_label=False)
    samples = [dict(img_path=f'{name}.jpg', pred_sem_seg=dict(
        data=torch.zeros(1, 4, 4, dtype=torch.long))) for name in names]  # as model outputs
    metric.process({}, samples)


def test_a_results_file_is_refused_then_replaced_on_purpose(tmp_path):
    out = tmp_path / 'results.pkl'
    out.write_bytes(pickle.dumps('earlier'))
    cfg = det_cfg()
    with pytest.raises(ResultsExistError, match='earlier test.*--overwrite-results'):
        results.check_target(cfg, str(out), overwrite=False)
    results.check_target(cfg, str(out), overwrite=True)
    results.configure(cfg, str(out))
    with results.written_atomically(cfg, str(out)):
        run_det_test(cfg, 'new')
    assert pickle.loads(out.read_bytes()) == [dict(img_id='new')]
    assert [p.name for p in tmp_path.iterdir()] == ['results.pkl']


def test_a_failed_test_leaves_the_earlier_results_file_and_no_partial_one(tmp_path):
    out = tmp_path / 'results.pkl'
    out.write_bytes(pickle.dumps('earlier'))
    cfg = det_cfg()
    results.configure(cfg, str(out))
    with pytest.raises(KeyboardInterrupt):
        with results.written_atomically(cfg, str(out)):
            run_det_test(cfg, 'new')  # written, then the run is interrupted before its end
            raise KeyboardInterrupt
    assert pickle.loads(out.read_bytes()) == 'earlier'
    assert [p.name for p in tmp_path.iterdir()] == ['results.pkl']


def test_a_folder_of_label_maps_is_refused_then_replaced_as_a_whole(tmp_path):
    out = tmp_path / 'maps'
    out.mkdir()
    (out / 'old_image.png').write_bytes(b'earlier')
    cfg = seg_cfg()
    with pytest.raises(ResultsExistError, match='1 label maps of an earlier test'):
        results.check_target(cfg, str(out), overwrite=False)
    results.check_target(cfg, str(out), overwrite=True)
    results.configure(cfg, str(out))
    with results.written_atomically(cfg, str(out)):
        run_seg_test(cfg, ['a', 'b'])
    assert sorted(p.name for p in out.iterdir()) == ['a.png', 'b.png']  # no earlier map left
    assert [p.name for p in tmp_path.iterdir()] == ['maps']
    with results.written_atomically(cfg, str(tmp_path / 'new' / 'maps')):  # a new folder
        run_seg_test(cfg, ['c'])
    assert [p.name for p in (tmp_path / 'new' / 'maps').iterdir()] == ['c.png']


def test_a_failed_test_leaves_the_earlier_label_maps(tmp_path):
    out = tmp_path / 'maps'
    out.mkdir()
    (out / 'old_image.png').write_bytes(b'earlier')
    cfg = seg_cfg()
    results.configure(cfg, str(out))
    with pytest.raises(RuntimeError):
        with results.written_atomically(cfg, str(out)):
            run_seg_test(cfg, ['a'])
            raise RuntimeError('the test failed half-way')
    assert [p.name for p in out.iterdir()] == ['old_image.png']
    assert [p.name for p in tmp_path.iterdir()] == ['maps']


@pytest.mark.parametrize('content', ['notes.txt', 'subfolder'])
def test_a_folder_with_more_than_label_maps_is_never_replaced(tmp_path, content):
    out = tmp_path / 'work'
    out.mkdir()
    (out / 'a.png').write_bytes(b'map')
    (out / content).mkdir() if content == 'subfolder' else (out / content).write_text('x')
    for overwrite in (False, True):
        with pytest.raises(ResultsExistError, match=f'other files than label maps \\({content}'):
            results.check_target(seg_cfg(), str(out), overwrite=overwrite)


def test_the_test_tool_refuses_before_building_anything_and_names_the_flag(tmp_path):
    out = tmp_path / 'results.pkl'
    out.write_bytes(b'earlier')
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}}, checkpoint)
    tool = load_tool('test')
    with pytest.raises(ResultsExistError) as caught:
        tool.main([TOY_DET, str(checkpoint), '--work-dir', str(tmp_path / 'work'),
                   '--out', str(out)])
    assert results.FLAG in str(caught.value) and not advised_items(str(caught.value))
    assert out.read_bytes() == b'earlier' and not (tmp_path / 'work').exists()
    assert tool.parse_args([TOY_DET, 'x.pth', results.FLAG]).overwrite_results
