"""Every head predicts exactly the dataset's classes, for every kind of config we ship, checked
both ways against the hosts.

* The check (``cli.head_classes``): each mismatch is one line whose ``--cfg-options`` advice,
  parsed as our tools parse it and applied, gives a config the check passes; the shipped
  configs pass unchanged.
* The hosts as the oracle, in process: a detector head with a class the dataset does not have
  predicts it (its classifier made to favour its last class, as a trained head does for the
  class it sees), and mmdet's own COCO metric fails on it (the late failure of a real run:
  ``IndexError`` in coco_metric.py); the same model on a dataset with all its classes is
  scored. A segmentation head with fewer classes than the data fails in mmseg's loss; with
  equal classes the loss is finite. Mask2Former panoptic: things and stuff split otherwise
  than the dataset's makes the fusion head hand a stuff class to the instance metric.
"""
import copy
import importlib

import pytest
import torch
from advice import follow
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope

from convnext_backbone.cli import config as cli_config
from convnext_backbone.cli.head_classes import check_head_classes, dataset_classes
from convnext_backbone.data.errors import DataError

from conftest import REPO

TOY = REPO / 'configs' / 'toy'
THREE = "('rectangle','ellipse','triangle')"
M2F_SEMANTIC = {  # the shipped ADE20K Mask2Former on the toy's 5 classes (the heads left at 150)
    'val_dataloader.dataset.type': 'BaseSegDataset',
    'val_dataloader.dataset.metainfo': dict(
        classes=('sky', 'ground', 'rectangle', 'ellipse', 'triangle'))}

# kind -> (config, loader whose dataset is compared, options making the mismatch, keys named)
KINDS = {
    'maskrcnn': (TOY / 'maskrcnn_convnext_toy_coco.py', 'val_dataloader',
                 {'val_dataloader.dataset.metainfo.classes': eval(THREE)},
                 ['model.roi_head.bbox_head.num_classes = 4',
                  'model.roi_head.mask_head.num_classes = 4']),
    'cascade': (REPO / 'tests' / 'deploy' / 'cascade_toy.py', 'test_dataloader',
                {'model.roi_head.bbox_head.1.num_classes': 5},
                ['model.roi_head.bbox_head.1.num_classes = 5']),
    'mask2former_instance': (TOY / 'mask2former_convnext_toy_coco.py', 'val_dataloader',
                             {'model.panoptic_head.num_stuff_classes': 1},
                             ['model.panoptic_head.num_stuff_classes = 1']),
    'mask2former_panoptic': (TOY / 'mask2former_convnext_toy_coco_panoptic.py', 'val_dataloader',
                             {'model.panoptic_fusion_head.num_things_classes': 5,
                              'model.panoptic_fusion_head.num_stuff_classes': 0},
                             ['model.panoptic_fusion_head.num_things_classes = 5',
                              'model.panoptic_fusion_head.num_stuff_classes = 0']),
    'mask2former_semantic': (REPO / 'configs' / 'mask2former' /
                             'mask2former_convnext_t_160k_ade20k.py', 'val_dataloader',
                             M2F_SEMANTIC, ['model.decode_head.num_classes = 150',
                                            'class_weight = 151 weights']),
    'dino': (TOY / 'dino_convnext_toy_coco.py', 'val_dataloader',
             {'model.bbox_head.num_classes': 80}, ['model.bbox_head.num_classes = 80']),
    'upernet': (TOY / 'upernet_convnext_toy_ade20k.py', 'val_dataloader',
                {'model.auxiliary_head.num_classes': 6}, ['model.auxiliary_head.num_classes = 6']),
    'deeplabv3plus': (TOY / 'deeplabv3plus_convnext_toy_ade20k.py', 'train_dataloader',
                      {'model.decode_head.num_classes': 4}, ['model.decode_head.num_classes = 4']),
}


def check(cfg, loader):
    check_head_classes(cfg, loader, dataset_classes(cfg, cfg[loader].dataset))


@pytest.mark.parametrize('kind', list(KINDS))
def test_mismatch_is_one_line_and_its_advice_passes(kind):
    path, loader, mistake, named = KINDS[kind]
    shipped = Config.fromfile(path)
    if kind != 'mask2former_semantic':  # its shipped dataset is ADE20K's 150, which it fits
        check(shipped, loader)
    cfg = copy.deepcopy(shipped)
    cfg.merge_from_dict(mistake)
    with pytest.raises(DataError) as caught:
        check(cfg, loader)
    message = str(caught.value)
    assert '\n' not in message and all(key in message for key in named), message
    check(follow(cfg, message), loader)


def test_heads_counting_their_own_labels_are_left_alone(host_config):
    """mmdet's HTC: its semantic head segments COCO-stuff's 183 classes (its own label maps),
    its bbox and mask heads COCO's 80: the shipped config passes, a bbox head at 81 does not."""
    cfg = host_config('mmdet::htc/htc_r50_fpn_1x_coco.py')
    check(cfg, 'train_dataloader')
    cfg.merge_from_dict({'model.roi_head.bbox_head.0.num_classes': 81})
    with pytest.raises(DataError, match='bbox_head.0.num_classes = 81'):
        check(cfg, 'train_dataloader')


def test_a_test_time_wrapper_is_looked_through():
    """``--tta`` wraps the model in a builder function (``convnext_backbone.TTAWithTestCfg``):
    its heads are the wrapped model's, checked as they are."""
    cfg = Config.fromfile(TOY / 'upernet_convnext_toy_ade20k.py')
    cfg.model = dict(**cfg.tta_model, module=cfg.model)
    check(cfg, 'test_dataloader')
    cfg.model.module.decode_head.num_classes = 6
    with pytest.raises(DataError, match='model.module.decode_head.num_classes = 6'):
        check(cfg, 'test_dataloader')


# The hosts as the oracle ------------------------------------------------------------------------

CLASSIFIERS = ('fc_cls', 'cls_branches', 'cls_embed', 'conv_seg')  # mmdet's / mmseg's names


def favour_last_class(model, count):
    """Every classifier of the model's heads scores class ``count - 1`` highest (as a trained
    head does for a class it sees; the rest, background / no-object included, far below)."""
    for name, module in model.named_modules():
        if set(name.split('.')[-2:]) & set(CLASSIFIERS) and getattr(module, 'bias', None) \
                is not None:
            with torch.no_grad():
                module.bias.fill_(-10.)
                module.bias[count - 1] = 10.


def built(cfg, loader):
    init_default_scope(cfg.default_scope)
    registry = importlib.import_module(f'{cfg.default_scope}.registry')
    torch.manual_seed(0)
    model = registry.MODELS.build(cfg.model)
    model.init_weights()
    dataset = registry.DATASETS.build(cfg[loader].dataset)
    return model, pseudo_collate([dataset[i] for i in range(len(dataset))]), dataset.metainfo


def coco_metric(cfg, batch, predictions, meta, ann_file):
    evaluator = Evaluator([dict(type='CocoMetric', ann_file=ann_file, metric=['bbox'])])
    evaluator.dataset_meta = meta
    evaluator.process(predictions, batch)
    return evaluator.evaluate(len(predictions))


DETECTORS = {  # kind -> (options giving the toy's data, the count the favoured class is of)
    'maskrcnn': 4, 'cascade': 4, 'dino': 4, 'mask2former_instance': 4,
    'mask2former_panoptic': 5,  # the panoptic head's things + stuff; class 4 is stuff
}


@pytest.mark.parametrize('kind', [k if k == 'maskrcnn' else pytest.param(k, marks=pytest.mark.slow)
                                  for k in DETECTORS])
def test_detector_with_a_class_the_dataset_lacks_fails_mmdets_metric(kind, toy_root):
    path, loader, _, _ = KINDS[kind]
    coco = toy_root / 'coco'
    cfg = cli_config.load_config(str(path), {f'{loader}.dataset.data_root': f'{coco}/',
                                             f'{loader}.dataset.ann_file':
                                             'annotations/instances_val2017.json',
                                             f'{loader}.dataset.data_prefix.img': 'val2017/'})
    if kind == 'mask2former_panoptic':  # its heads told 5 things and no stuff; the images
        # read as the instance toy reads them (predicting needs no panoptic annotations)
        cfg.merge_from_dict({**KINDS[kind][2], 'model.panoptic_head.num_things_classes': 5,
                             'model.panoptic_head.num_stuff_classes': 0})
        instance = Config.fromfile(TOY / 'mask2former_convnext_toy_coco.py')
        cfg[loader].dataset.update(type='CocoDataset',
                                   pipeline=instance[loader].dataset.pipeline)
    model, batch, meta = built(cfg, loader)
    favour_last_class(model, DETECTORS[kind])
    model.eval()
    with torch.no_grad():
        predictions = model.test_step(batch)
    ann_file = str(coco / 'annotations' / 'instances_val2017.json')
    things = {**meta, 'classes': ('rectangle', 'ellipse', 'triangle', 'star')}
    fewer = {**meta, 'classes': eval(THREE)}
    if kind == 'mask2former_panoptic':
        fewer = things  # stuff counted as a thing: label 4 reaches the instance metric
        cfg_fewer = cfg
    else:
        cfg_fewer = copy.deepcopy(cfg)
        cfg_fewer[loader].dataset.metainfo = dict(classes=eval(THREE))
    with pytest.raises(DataError):  # our check refuses this configuration ...
        check(cfg_fewer, loader)
    with pytest.raises(IndexError):  # ... which the host's metric fails on
        coco_metric(cfg, batch, predictions, fewer, ann_file)
    if kind != 'mask2former_panoptic':  # the same model on all its classes: scored
        check(cfg, loader)
        assert 'coco/bbox_mAP' in coco_metric(cfg, batch, predictions, things, ann_file)


SEGMENTORS = ['upernet', 'deeplabv3plus', 'mask2former_semantic']


def _toy_semantic(cfg, ade):
    """The shipped ADE20K Mask2Former shrunk as configs/toy/mask2former_convnext_toy_coco.py
    shrinks the COCO one (small backbone, 64-wide decoders, 10 queries), on 96-pixel crops of
    the toy ADE set."""
    seg = Config.fromfile(TOY / 'upernet_convnext_toy_ade20k.py')
    attention = dict(embed_dims=64, num_heads=4)
    cfg.merge_from_dict({
        'model.data_preprocessor.size': seg.crop_size,
        'model.backbone.init_cfg': None,
        'model.decode_head': dict(
            in_channels=[32, 64, 128, 256], feat_channels=64, out_channels=64, num_queries=10,
            pixel_decoder=dict(norm_cfg=dict(type='GN', num_groups=8), encoder=dict(
                num_layers=1, layer_cfg=dict(self_attn_cfg=attention, ffn_cfg=dict(
                    embed_dims=64, feedforward_channels=128))),
                positional_encoding=dict(num_feats=32)),
            positional_encoding=dict(num_feats=32),
            transformer_decoder=dict(num_layers=3, layer_cfg=dict(
                self_attn_cfg=attention, cross_attn_cfg=attention,
                ffn_cfg=dict(embed_dims=64, feedforward_channels=256)))),
        'train_dataloader.dataset': seg.train_dataloader.dataset.to_dict()})
    cfg.train_dataloader.dataset.data_root = str(ade)
    cfg.model.backbone.arch = seg.model.backbone.arch


@pytest.mark.parametrize('kind', [k if k == 'upernet' else pytest.param(k, marks=pytest.mark.slow)
                                  for k in SEGMENTORS])
def test_segmentor_with_fewer_classes_fails_mmsegs_loss(kind, toy_root):
    path, _, _, _ = KINDS[kind]
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    losses, heads, labels = {}, {}, set()
    for count in (4, 5):
        cfg = cli_config.load_config(str(path), {'train_dataloader.dataset.data_root': str(ade)})
        if kind == 'mask2former_semantic':
            _toy_semantic(cfg, ade)
        for head in ('decode_head', 'auxiliary_head'):
            if cfg.model.get(head):
                cfg.model[head].num_classes = count
                loss_cls = cfg.model[head].get('loss_cls')
                if loss_cls and isinstance(loss_cls.get('class_weight'), list):
                    loss_cls.class_weight = [1.0] * count + [0.1]
        if count == 4:
            with pytest.raises(DataError):
                check(cfg, 'train_dataloader')
        else:
            check(cfg, 'train_dataloader')
        model, batch, _ = built(cfg, 'train_dataloader')
        heads[count] = model.decode_head
        labels |= {int(v) for s in batch['data_samples'] for v in s.gt_sem_seg.data.unique()}
        model.train()
        data = model.data_preprocessor(batch, True)
        try:
            losses[count] = model.loss(**data)
        except (RuntimeError, IndexError) as error:  # CUDA-style "target out of bounds"
            losses[count] = error
    if kind == 'mask2former_semantic':
        # mmseg's Mask2Former: no error, but label 4 is the index of the head's "no object"
        # output (cls_embed: 4 classes + 1), so the last class is silently trained as nothing
        assert not isinstance(losses[4], Exception)
        assert heads[4].cls_embed.out_features == 5 and 4 in labels
    else:
        assert isinstance(losses[4], Exception), losses[4]
    assert all(torch.isfinite(v).all() for k, v in losses[5].items() if 'loss' in k)
