"""Mistakes that mmengine's startup lets through and that fail at the first validation or the
first checkpoint (cli.late_failures), on the toy configs: each is one line at startup whose
``--cfg-options`` advice, followed, passes; the shipped configs pass; one goes through
tools/train.py to show it is refused before any training. What the host does with each
(seen through tools/train.py on the toys) is listed in docs/reliability.md; the metric names
``save_best`` is checked against are compared with what the hosts' metrics report."""
import copy
import json

import pytest
import torch
from advice import follow
from bad_data import TOY_DET, TOY_DINO, TOY_SEG, other_split, toy_config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope

from convnext_backbone.cli.late_failures import (
    LateFailureError,
    check_late_failures,
    metric_names,
)

from conftest import REPO, run_tool

DET, SEG, DINO = TOY_DET, TOY_SEG, TOY_DINO
toy = toy_config


# case -> (config, the mistake, what the message names)
CASES = {
    'evaluator_ann_file_missing': (DET, lambda r: {'val_evaluator.ann_file': f'{r}/coco/x.json'},
                                   'val_evaluator.ann_file = '),
    'evaluator_ann_file_of_other_images': (
        DET, lambda r: {'val_evaluator.ann_file': other_split(r)},
        'is not the annotation file of the val_dataloader dataset'),
    'save_best_unknown_metric': (DET, lambda r: {'default_hooks.checkpoint.save_best':
                                                 'coco/bbox_AP'}, "save_best = 'coco/bbox_AP'"),
    'save_best_unknown_metric_seg': (SEG, lambda r: {'default_hooks.checkpoint.save_best': 'miou'},
                                     "save_best = 'miou'"),
    'segm_metric_without_masks': (DINO, lambda r: {'val_evaluator.metric': ['bbox', 'segm']},
                                  "'segm' needs masks"),
    'format_only_without_outfile_prefix': (DET, lambda r: {'val_evaluator.format_only': True},
                                           'format_only = True needs outfile_prefix'),
    'iou_metric_unknown': (SEG, lambda r: {'val_evaluator.iou_metrics': ['miou']},
                           "['miou'] unknown to mmseg"),
    'checkpoint_out_dir_unwritable': (SEG, lambda r: {'default_hooks.checkpoint.out_dir':
                                                      '/proc/no/such/place'},
                                      'checkpoints cannot be written there'),
    'checkpoint_by_epoch_in_an_iteration_loop': (DINO, lambda r: {
        'default_hooks.checkpoint.by_epoch': True}, 'by_epoch = True counts epochs'),
    'no_checkpoint_at_all': (SEG, lambda r: {'default_hooks.checkpoint.interval': 1000,
                                             'default_hooks.checkpoint.save_last': False},
                             'would save no checkpoint at all'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_late_failure_is_one_line_at_startup_and_its_advice_passes(case, toy_root):
    config, mistake, named = CASES[case]
    cfg = toy(config, toy_root)
    check_late_failures(cfg)  # the toy as shipped
    cfg.merge_from_dict(mistake(toy_root))
    with pytest.raises(LateFailureError) as caught:
        check_late_failures(cfg)
    message = str(caught.value)
    assert '\n' not in message and named in message and '--cfg-options' in message, message
    check_late_failures(follow(cfg, message))


def test_another_file_with_the_same_images_passes(toy_root, tmp_path):
    """An evaluator may read other annotations of the dataset's images (a copy elsewhere; the
    panoptic toy scores its panoptic set with the instances file): not a mistake."""
    copy_of_val = tmp_path / 'val.json'
    copy_of_val.write_text((toy_root / 'coco' / 'annotations' /
                            'instances_val2017.json').read_text())
    cfg = toy(DET, toy_root)
    cfg.val_evaluator.ann_file = str(copy_of_val)
    check_late_failures(cfg)


def test_other_annotations_of_the_same_images_pass(toy_root, tmp_path):
    """Other ground truth for the same images (here one object less on every image), as a user
    scores a model against another model's detections: the host runs it, so do we."""
    data = json.loads((toy_root / 'coco' / 'annotations' / 'instances_val2017.json').read_text())
    seen, kept = set(), []
    for annotation in data['annotations']:
        if annotation['image_id'] in seen:
            kept.append(annotation)
        seen.add(annotation['image_id'])
    data['annotations'] = kept
    (tmp_path / 'other.json').write_text(json.dumps(data))
    cfg = toy(DET, toy_root)
    cfg.val_evaluator.ann_file = str(tmp_path / 'other.json')
    check_late_failures(cfg)


def test_test_tool_checks_the_test_evaluator_only(toy_root):
    cfg = toy(DET, toy_root)
    cfg.merge_from_dict({'default_hooks.checkpoint.save_best': 'nothing',
                         'test_evaluator.ann_file': f'{toy_root}/coco/x.json'})
    with pytest.raises(LateFailureError, match='test_evaluator.ann_file'):
        check_late_failures(cfg, ('test_dataloader',))


@pytest.mark.parametrize('scope, metric, batch', [
    ('mmdet', dict(type='CocoMetric', metric=['bbox', 'segm']), 'coco'),
    ('mmdet', dict(type='CocoMetric', metric='bbox', prefix='val', metric_items=['mAP']), 'coco'),
    ('mmseg', dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice', 'mFscore']), 'seg'),
])
def test_the_metric_names_are_those_the_hosts_report(scope, metric, batch, toy_root, tmp_path):
    """The hosts' own metrics, on one toy image with a perfect prediction, report exactly the
    names save_best is checked against."""
    init_default_scope(scope)
    evaluator = Evaluator(copy.deepcopy(metric))
    if batch == 'coco':
        evaluator.metrics[0].ann_file = None  # built below from the toy file
        from mmdet.evaluation.metrics import CocoMetric
        evaluator = Evaluator(CocoMetric(
            ann_file=f'{toy_root}/coco/annotations/instances_val2017.json',
            **{k: v for k, v in metric.items() if k != 'type'}))
        from pycocotools.coco import COCO
        coco = COCO(f'{toy_root}/coco/annotations/instances_val2017.json')
        image = coco.dataset['images'][0]
        anns = coco.imgToAnns[image['id']]
        evaluator.dataset_meta = dict(classes=tuple(c['name'] for c in coco.dataset['categories']))
        boxes = torch.tensor([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                               a['bbox'][1] + a['bbox'][3]] for a in anns])
        masks = torch.from_numpy(
            __import__('numpy').stack([coco.annToMask(a) for a in anns])).bool()
        labels = torch.tensor([[c['id'] for c in coco.dataset['categories']].index(
            a['category_id']) for a in anns])
        sample = dict(img_id=image['id'], ori_shape=(image['height'], image['width']),
                      pred_instances=dict(bboxes=boxes, scores=torch.ones(len(anns)),
                                          labels=labels, masks=masks))
        evaluator.process([sample])
        reported = evaluator.evaluate(1)
    else:
        evaluator.dataset_meta = dict(classes=('a', 'b'))
        label = torch.zeros(1, 4, 4, dtype=torch.long)
        evaluator.process([dict(pred_sem_seg=dict(data=label), gt_sem_seg=dict(data=label))])
        reported = evaluator.evaluate(1)
    assert sorted(reported) == sorted(metric_names(metric))


@pytest.mark.slow  # tools/train.py in a subprocess
def test_train_tool_refuses_before_training(toy_root, tmp_path):
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    proc = run_tool(REPO / 'tools' / 'train.py', SEG, '--work-dir', tmp_path, '--cfg-options',
                    *[f'{loader}.dataset.data_root={ade}' for loader in
                      ('train_dataloader', 'val_dataloader', 'test_dataloader')],
                    'default_hooks.checkpoint.save_best=miou', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: default_hooks.checkpoint.save_best = 'miou'"), last
    assert 'Iter(train)' not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []
