"""Users' configs inherit ours by path (the README's promise): the example under configs/examples
and a config written elsewhere that names ours by absolute path."""
from config_helpers import REPO, build, load, read

FLAGSHIP = 'configs/maskrcnn_convnext_t_coco.py'


def test_example_changes_only_the_data_and_the_classes():
    example, flagship = read('configs/examples/maskrcnn_convnext_t_my_dataset.py'), read(FLAGSHIP)
    heads = example.model.roi_head
    assert heads.bbox_head.num_classes == heads.mask_head.num_classes == 3
    train = example.train_dataloader.dataset
    assert train.metainfo.classes == ('cat', 'dog', 'bird')
    assert train.data_root == 'data/my_dataset/' and train.ann_file == 'annotations/train.json'
    assert example.test_dataloader.dataset.ann_file == 'annotations/val.json'
    assert example.val_evaluator.ann_file == 'data/my_dataset/annotations/val.json'
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'custom_imports'):
        assert example[key] == flagship[key], key
    assert example.model.backbone == flagship.model.backbone
    assert train.pipeline == flagship.train_dataloader.dataset.pipeline


def test_config_elsewhere_inherits_ours_by_absolute_path(tmp_path):
    user = tmp_path / 'my_project' / 'cascade_convnext_s_3classes.py'
    user.parent.mkdir()
    ours = REPO / 'configs' / 'cascade_maskrcnn' / 'cascade_maskrcnn_convnext_s_3x_coco.py'
    user.write_text(
        f"_base_ = [{str(ours)!r}]\n"
        # Lists (the cascade's three box heads) are replaced, not merged: derive the new list
        # from the inherited one, which a Python config sees as `_base_`.
        "model = dict(roi_head=dict(\n"
        "    bbox_head=[dict(h, num_classes=3) for h in _base_.model.roi_head.bbox_head],\n"
        "    mask_head=dict(num_classes=3)))\n")
    cfg = load(user)
    assert cfg.model.backbone.arch == 'v1-small'
    assert cfg.optim_wrapper.paramwise_cfg.decay_rate == 0.7
    assert cfg.model.roi_head.bbox_head[0].loss_bbox.type == 'GIoULoss'  # merged, not replaced
    model = build(cfg, device='meta')
    assert [h.num_classes for h in model.roi_head.bbox_head] == [3, 3, 3]
    assert all(h.num_shared_convs == 4 for h in model.roi_head.bbox_head)
