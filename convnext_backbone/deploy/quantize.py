"""int8 graphs: an exported fp32 ONNX graph -> the same graph with int8 layers.

Two modes of onnxruntime's quantization, as data (:data:`MODES`):

* ``int8`` (static, calibrated): the weights of the Conv, MatMul and Gemm layers int8 per output
  channel *and* their input activations uint8, with ranges measured once on calibration images
  (the config's val set by default, :mod:`.calibration`). onnxruntime fuses each
  dequantize -> layer -> quantize into one integer kernel (``QLinearConv``, ``QLinearMatMul``),
  so the dense convolutions of the necks and heads, which hold most of a detector's or
  segmentor's time, run in int8 too. The graph is first simplified (constant folding) so that
  every Conv's bias is a constant, which the fusion needs.
* ``int8-dynamic``: MatMul weights only, activations quantized per call; no calibration, so
  usable without any image, but the Convs stay fp32 (onnxruntime's dynamic ``ConvInteger``
  is slower than its fp32 convolution).

Weights use 7 of their 8 bits (``reduce_range``, both modes), whatever CPU quantizes: x86 CPUs
without VNNI (AVX2 without AVX-VNNI, Intel AVX-512 before Cascade Lake, AMD before Zen 4) add
uint8 x int8 products in pairs into int16 registers, which saturate with full-range weights
(2 x 255 x 127 > 32767); 7-bit weights cannot (2 x 255 x 64 < 32767), so the integer layers of
one graph compute the same on every x86 CPU (onnxruntime picks its kernels by the CPU it runs
on, not by the one that quantized). Nothing here depends on the CPU.
Layers listed in :data:`KEEP_FP32` stay fp32: the last layer of each head, whose output is a
score, a box offset or a mask logit (where an int8 error is an error of the result itself).
"""
import logging
import os
import re
import tempfile
from typing import List, Optional, Sequence

import numpy as np

from ..checkpoint.files import atomic_target
from .errors import ExportError

MODES = {
    'int8': 'onnxruntime static quantization: Conv, MatMul and Gemm weights int8 (7-bit, per '
            'channel) and their input activations uint8, ranges calibrated on {calibration}; '
            'the last layer of each head and every other op fp32',
    'int8-dynamic': 'onnxruntime dynamic quantization of the MatMul weights (int8, 7-bit, per '
                    'channel), activations quantized per call; other ops fp32',
}
STATIC_OPS = ('Conv', 'MatMul', 'Gemm', 'Relu')
DYNAMIC_OPS = ('MatMul',)
# Node names (regular expressions) kept fp32 in static graphs: the heads' output layers.
KEEP_FP32 = (
    r'conv_seg/',          # UperNet / DeepLabV3+ classifier (mmseg's decode and auxiliary heads)
    r'fc_cls/', r'fc_reg/',  # box classifier and box regressor (every cascade stage)
    r'rpn_cls(_\d+)?/', r'rpn_reg(_\d+)?/',  # RPN objectness and anchor offsets (per level)
    r'conv_logits/',       # mask logits
)


def quantized_path(out: str, mode: str = 'int8') -> str:
    """``model.onnx`` -> ``model.int8.onnx`` (``model.int8-dynamic.onnx``), next to it."""
    root, ext = os.path.splitext(out)
    return f'{root}.{mode}{ext}'


def check_quantize(mode: str, out: str) -> None:
    """Refuse an impossible ``--quantize`` before the (long) export."""
    if mode not in MODES:
        raise ExportError(f'--quantize {mode}: the modes are {", ".join(MODES)} (onnxruntime '
                          'static and dynamic quantization); e.g. --quantize int8.')
    if not out.endswith('.onnx'):
        raise ExportError(f'--quantize {mode} quantizes ONNX graphs with onnxruntime, not '
                          f'{out}: export to FILE.onnx to quantize.')


def fp32_nodes(model, patterns: Sequence[str] = KEEP_FP32) -> List[str]:
    """Names of the nodes of ``model`` (an ``onnx.ModelProto``) that stay fp32: those matching
    ``patterns``, and the MatMuls of two computed tensors (the pooling matrices of adaptive
    average pooling in the PPM): quantized, their outputs fell to 6-12 dB SQNR on the random toy
    UperNet where the layers around them kept 25 dB (``quant_report``), for a negligible share
    of the time."""
    compiled = [re.compile(p) for p in patterns]
    constants = {t.name for t in model.graph.initializer} | {
        o for n in model.graph.node if n.op_type == 'Constant' for o in n.output}
    return [n.name for n in model.graph.node if any(p.search(n.name) for p in compiled) or
            (n.op_type == 'MatMul' and not any(i in constants for i in n.input))]


class _Inputs:
    """onnxruntime's calibration data reader over a list of ``images`` arrays."""

    def __init__(self, inputs: Sequence[np.ndarray]) -> None:
        self.items = iter(inputs)

    def get_next(self):
        image = next(self.items, None)
        return None if image is None else {'images': image}


def usable_for_calibration(fp32_path: str, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The calibration inputs on which a detector detects something (an image without
    detections leaves the mask head's layers with empty tensors, which have no range)."""
    from .runtime import OnnxModel
    graph = OnnxModel(fp32_path)
    if graph.task != 'detection':
        return list(inputs)
    kept = [image for image in inputs if len(graph(image)['scores'])]
    if not kept:
        raise ExportError(f'the graph {fp32_path} detects nothing on any of the {len(inputs)} '
                          'calibration images, so the mask head cannot be calibrated: load '
                          'the trained checkpoint, or give --calib-dir FOLDER with images of '
                          'the objects it detects.')
    return kept


def _static(fp32_path: str, out: str, inputs: Sequence[np.ndarray]) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as folder:
        simplified = os.path.join(folder, 'simplified.onnx')
        quant_pre_process(fp32_path, simplified, skip_symbolic_shape=True)
        keep = fp32_nodes(onnx.load(simplified))
        quantize_static(simplified, out, _Inputs(inputs), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(STATIC_OPS), per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=keep,
                        calibrate_method=CalibrationMethod.MinMax)


class _NoPreprocessingAdvice(logging.Filter):
    """Drops onnxruntime's advice to pre-process the graph, printed for every dynamic
    quantization: the dynamic mode quantizes MatMul weights, which need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'pre-processing before quantization' not in record.getMessage()


def _dynamic(fp32_path: str, out: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    advice = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(advice)  # onnxruntime logs it on the root logger
    try:
        quantize_dynamic(fp32_path, out, op_types_to_quantize=list(DYNAMIC_OPS),
                         per_channel=True, reduce_range=True, weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(advice)


def quantize_graph(fp32_path: str, mode: str = 'int8', out: Optional[str] = None,
                   calibration: Optional[Sequence[np.ndarray]] = None,
                   calibration_source: str = 'the given images') -> str:
    """Write the ``mode`` graph of ``fp32_path`` (default path: :func:`quantized_path`), with
    the fp32 graph's metadata plus ``quantization`` (what was quantized, calibrated on what);
    returns its path. ``calibration``: the graph's inputs to calibrate on (``int8``)."""
    import onnx
    check_quantize(mode, fp32_path)
    out = out or quantized_path(fp32_path, mode)
    if mode == 'int8' and not calibration:
        raise ExportError('--quantize int8 needs calibration images: give --calib-dir FOLDER '
                          "(or let it read the config's val set), or --quantize int8-dynamic.")
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise ExportError(f'--quantize {mode} needs onnxruntime with its quantization tools '
                          f'({exc}): pip install onnxruntime.') from None
    if mode == 'int8':
        calibration = usable_for_calibration(fp32_path, calibration)
    with atomic_target(out) as temporary:  # an earlier file at ``out`` stays until the end
        try:
            if mode == 'int8':
                _static(fp32_path, temporary, calibration)
            else:
                _dynamic(fp32_path, temporary)
        except Exception as exc:  # onnxruntime raises many kinds
            text = str(exc).strip().splitlines()
            raise ExportError(f'quantizing {fp32_path} to {mode} failed ({type(exc).__name__}: '
                              f'{text[0][:300] if text else "no message"}); the fp32 graph is '
                              'unaffected: deploy it.') from None
        fp32, proto = onnx.load(fp32_path), onnx.load(temporary)
        del proto.metadata_props[:]
        for entry in fp32.metadata_props:
            proto.metadata_props.add().CopyFrom(entry)
        note = proto.metadata_props.add()
        note.key = 'quantization'
        source = f'{len(calibration)} images ({calibration_source})' if mode == 'int8' else ''
        note.value = f'{mode}: ' + MODES[mode].format(calibration=source)
        onnx.save(proto, temporary)
    return out
