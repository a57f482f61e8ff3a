"""Side-by-side speed and memory measurements behind ``tools/benchmark_backbone.py``.

Not part of the installed package (it needs timm, mmpretrain, mmdet and mmseg, which users of the
backbone need not have): a folder of modules the tool imports by name (Python puts the tool's
own folder first on ``sys.path``; the tests get it through pytest's ``pythonpath = tools``).

``peers``: our backbone, timm's and mmpretrain's with one set of weights; ``host_models``,
``detectors``, ``segmentors``: Mask R-CNN / UperNet ConvNeXt-T from our config and from
mmdet's / mmseg's own, with identical weights; ``cases``: what is timed; ``measure``:
interleaved timing, the GEMM floor, peak memory; ``isa``: the instruction set, chosen and read
back (what each library reports, judged by ``convnext_backbone.cpu_isa``); ``record_cpu``: a
record of those reports for tests/fixtures/cpu_kinds/; ``op_profile``: time per kind of
operation; ``report``: the Markdown table.
"""
