"""Deployment: export the backbone, UperNet segmentors and Mask R-CNN / Cascade Mask R-CNN
detectors to ONNX graphs that plain onnxruntime runs (standard operators only).

Not imported by ``convnext_backbone`` itself; importing this package imports no mmdet/mmseg
either (the driver does, when it builds a model).

* ``driver``     - the driver: config + checkpoint -> strictly loaded model -> ONNX file.
* ``preprocess`` - the data preprocessor (channel swap, normalisation, padding) inside the graph.
* ``segmentor``  - backbone-only and encoder-decoder wrappers.
* ``detector``   - the two-stage (Mask R-CNN / cascade) wrapper for one image.
* ``roi``, ``boxes`` - mmdet's test-time post-processing in exportable ops.
* ``ops``        - NMS and RoIAlign as standard ONNX operators; dynamic adaptive pooling.
* ``metadata``   - class names, resize rule, thresholds for the graph; what the graph cannot see.
* ``exportable`` - which models export (the one decision) and the shipped ones it accepts.
* ``reference_pair`` - an image file and the graph's outputs on it, for checking a port.
* ``paste``      - the detector's RoI masks pasted into the image, as mmdet does (numpy).
* ``to_original`` - boxes and seg logits brought to the original image, as the hosts do.
* ``runtime``    - ``OnnxModel``: an onnxruntime session that checks the input contract.
* ``reference``  - the eager model's own results for an input tensor.
* ``verify``     - onnxruntime against ``inference_detector`` / ``inference_model`` on image
  files (``tools/export.py --verify``, ``--verify-image``).
* ``evaluate``   - a graph scored with the config's own test set and evaluator (COCO AP, mIoU)
  as tools/test.py scores the model (``tools/test_onnx.py``).
* ``quantize``   - int8 graphs: onnxruntime static (calibrated) or dynamic quantization.
* ``calibration`` - the calibration images of static int8 graphs (the val set, a folder).
* ``quant_report`` - where an int8 graph departs from its fp32 graph (SQNR per layer).
* ``pt2``        - ``torch.export`` programs of the backbone and segmentor wrappers.
"""
from .driver import build_model, export, export_onnx, load_config, load_weights, wrap
from .errors import ExportError
from .runtime import OnnxModel

__all__ = ['ExportError', 'export', 'export_onnx', 'load_config', 'build_model', 'load_weights',
           'wrap', 'OnnxModel']
