"""Side-by-side speed and memory measurements behind ``tools/benchmark_backbone.py``.

``peers``: our backbone, timm's and mmpretrain's with one set of weights; ``detectors``: Mask R-CNN
ConvNeXt-T from our config and from mmdet's own; ``measure``: interleaved timing, the GEMM floor,
peak memory; ``report``: the Markdown table recorded in docs/benchmarks.md. Needs the ``tests``
extra (timm, mmpretrain) and mmdet.
"""
