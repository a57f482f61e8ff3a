"""The configs' own data pipelines run, unchanged, on the generated toy COCO / ADE20K sets: the
DETR-style multi-scale crop of the 3x detection recipe, the 512 and 640 ADE20K training pipelines
and the multi-scale + flip test-time augmentation (``--tta``)."""
import importlib

import pytest

from config_helpers import load, registry

ADE_CONFIGS = ['configs/upernet/upernet_convnext_t_160k_ade20k.py',
               'configs/upernet/upernet_convnext_b_in22k_640_160k_ade20k.py']


def dataset(cfg, dataset_cfg, **overrides):
    registry(cfg)  # activates the config's scope
    datasets = importlib.import_module(f'{cfg.default_scope}.registry').DATASETS
    dataset_cfg = dataset_cfg.copy()
    dataset_cfg.update(overrides)
    return datasets.build(dataset_cfg)


def test_detection_3x_pipeline_resizes_to_480_800_and_crops(toy_root, toy_data_tool):
    cfg = load('configs/maskrcnn_convnext_t_coco.py')
    steps = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    assert steps == ['convnext_backbone.CheckedLoadImageFromFile', 'LoadAnnotations',
                     'RandomFlip', 'RandomChoice', 'PackDetInputs']
    data = dataset(cfg, cfg.train_dataloader.dataset, data_root=str(toy_root / 'coco'),
                   metainfo=dict(classes=toy_data_tool.TOY_COCO_CLASSES),
                   filter_cfg=dict(filter_empty_gt=True, min_size=4))
    for i in range(4):  # both branches of the RandomChoice (one per draw) on square toy images
        item = data[i % len(data)]
        h, w = item['inputs'].shape[1:]
        assert min(h, w) in range(480, 801, 32), (h, w)
        inst = item['data_samples'].gt_instances
        assert len(inst.bboxes) == len(inst.masks) == len(inst.labels)


@pytest.mark.parametrize('path', ADE_CONFIGS)
def test_ade20k_training_pipeline_crops_to_the_config_size(path, toy_root, toy_data_tool):
    cfg = load(path)
    crop = cfg.model.data_preprocessor.size
    assert [s for s in cfg.train_dataloader.dataset.pipeline
            if s['type'] == 'RandomCrop'][0]['crop_size'] == crop
    data = dataset(cfg, cfg.train_dataloader.dataset, **_toy_ade(toy_root, toy_data_tool))
    item = data[0]
    h, w = item['inputs'].shape[1:]
    assert h <= crop[0] and w <= crop[1] and max(h, w) >= crop[0] // 2
    assert item['data_samples'].gt_sem_seg.data.shape[1:] == (h, w)


@pytest.mark.parametrize('path', ADE_CONFIGS)
def test_multi_scale_flip_tta_pipeline(path, toy_root, toy_data_tool):
    cfg = load(path)
    # what `tools/test.py --tta` wraps the model in (with whole-image inference at every scale:
    # tests/configs/test_paper_eval_settings.py)
    assert cfg.tta_model.tta.type == 'mmseg.SegTTAModel'
    data = dataset(cfg, cfg.test_dataloader.dataset, pipeline=cfg.tta_pipeline,
                   **_toy_ade(toy_root, toy_data_tool, split='validation'))
    item = data[0]
    assert len(item['inputs']) == 12  # 6 scales x (no flip, flip)
    short = cfg.model.data_preprocessor.size[0]
    sides = sorted({min(x.shape[1:]) for x in item['inputs']})
    # Square toy images: the short side follows the (long, short) scales times 0.5 ... 1.75.
    assert sides == [int(short * r) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert {s.flip for s in item['data_samples']} == {False, True}


def _toy_ade(toy_root, toy_data_tool, split='training'):
    # ADE20KDataset only accepts subsets of the 150 ADE classes: the toy set has its own.
    return dict(type='BaseSegDataset', data_root=str(toy_root / 'ade' / 'ADEChallengeData2016'),
                img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
                metainfo=dict(classes=toy_data_tool.TOY_ADE_CLASSES),
                data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'))
