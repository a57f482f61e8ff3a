"""The flagship: Mask R-CNN + ConvNeXt-T (IN-1K) on COCO, the paper's 3x multi-scale recipe.

Schedule: 3x (36 epochs). Total batch size: 16. This path is what users and the README run; the
recipe lives in configs/maskrcnn/maskrcnn_convnext_t_3x_coco.py (its docstring has every setting),
unchanged here.

    python tools/train.py configs/maskrcnn_convnext_t_coco.py
"""
_base_ = ['./maskrcnn/maskrcnn_convnext_t_3x_coco.py']
