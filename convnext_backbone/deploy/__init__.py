"""Deployment: export the backbone, UperNet segmentors and Mask R-CNN / Cascade Mask R-CNN
detectors to ONNX graphs that plain onnxruntime runs (standard operators only).

Not imported by ``convnext_backbone`` itself; importing this package imports no mmdet/mmseg
either (the driver does, when it builds a model).

* ``driver``     - the driver: config + checkpoint -> strictly loaded model -> ONNX file.
* ``preprocess`` - the data preprocessor (channel swap, normalisation) inside the graph; sizes.
* ``segmentor``  - backbone-only and encoder-decoder wrappers.
* ``detector``   - the two-stage (Mask R-CNN / cascade) wrapper for one image.
* ``roi``, ``boxes`` - mmdet's test-time post-processing in exportable ops.
* ``ops``        - NMS and RoIAlign as standard ONNX operators; dynamic adaptive pooling.
* ``runtime``    - ``OnnxModel``: an onnxruntime session that checks the input contract.
* ``reference``  - the eager model's own results for the same input.
* ``verify``     - onnxruntime against eager on the same images (``tools/export.py --verify``).
* ``pt2``        - ``torch.export`` programs of the backbone and segmentor wrappers.
"""
from .driver import build_model, export, export_onnx, load_config, load_weights, wrap
from .errors import ExportError
from .runtime import OnnxModel

__all__ = ['ExportError', 'export', 'export_onnx', 'load_config', 'build_model', 'load_weights',
           'wrap', 'OnnxModel']
