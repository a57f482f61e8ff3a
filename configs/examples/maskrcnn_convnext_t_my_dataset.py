"""Example: a config of your own that inherits ours by path.

The flagship recipe (``configs/maskrcnn_convnext_t_coco.py``: Mask R-CNN + ConvNeXt-T, IN-1K
weights, 3x multi-scale + crop training) on your own COCO-format data set with three classes.
Schedule: 36 epochs (3x), as inherited. Total batch size: 16 (8 GPUs x 2 images).
Only what differs is written here. ``_base_`` paths are relative to this file; an absolute path
works too, so your config can live anywhere:

    _base_ = ['/path/to/convnext-backbone/configs/maskrcnn_convnext_t_coco.py']
"""
_base_ = ['../maskrcnn_convnext_t_coco.py']

classes = ('cat', 'dog', 'bird')
data_root = 'data/my_dataset/'

model = dict(roi_head=dict(bbox_head=dict(num_classes=len(classes)),
                           mask_head=dict(num_classes=len(classes))))

train_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes),
    ann_file='annotations/train.json', data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes),
    ann_file='annotations/val.json', data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
