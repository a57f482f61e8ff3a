"""int8 graphs: an exported fp32 ONNX graph -> the same graph with int8 weights.

onnxruntime's *dynamic* quantization (``onnxruntime.quantization.quantize_dynamic``): the
weights of the MatMul layers (ConvNeXt's pointwise MLPs, which hold most of the backbone's
compute) are stored as int8 per output channel, and each call quantizes their activations on the
fly (``DynamicQuantizeLinear`` -> ``MatMulInteger``). Dynamic rather than static, because it
needs no calibration pass: a static pass would have to run the detector graphs (NMS, per-level
RoI selection, any input size) with every intermediate tensor as an extra output, and the
activation ranges it fixes would hold for one image-size distribution only. Conv layers stay
fp32: onnxruntime's CPU ``ConvInteger`` kernel is slower than its fp32 convolution.
"""
import os

from .errors import ExportError

QUANTIZE_MODES = ('int8',)
QUANTIZED_OPS = ('MatMul',)


def quantized_path(out: str, mode: str = 'int8') -> str:
    """``model.onnx`` -> ``model.int8.onnx`` (next to it)."""
    root, ext = os.path.splitext(out)
    return f'{root}.{mode}{ext}'


def check_quantize(mode: str, out: str) -> None:
    """Refuse an impossible ``--quantize`` before the (long) export."""
    if mode not in QUANTIZE_MODES:
        raise ExportError(f'--quantize {mode}: the modes are {", ".join(QUANTIZE_MODES)} '
                          '(onnxruntime dynamic quantization); e.g. --quantize int8.')
    if not out.endswith('.onnx'):
        raise ExportError(f'--quantize {mode} quantizes ONNX graphs with onnxruntime, not '
                          f'{out}: export to FILE.onnx to quantize.')


def quantize_graph(fp32_path: str, mode: str = 'int8', out: str = None) -> str:
    """Write the int8 graph of ``fp32_path`` (default: ``quantized_path``), with the fp32
    graph's metadata plus ``quantization``; returns its path."""
    import onnx
    check_quantize(mode, fp32_path)
    out = out or quantized_path(fp32_path, mode)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ExportError(f'--quantize {mode} needs onnxruntime with its quantization tools '
                          f'({exc}): pip install onnxruntime.') from None
    try:
        quantize_dynamic(fp32_path, out, op_types_to_quantize=list(QUANTIZED_OPS),
                         per_channel=True, weight_type=QuantType.QInt8)
    except Exception as exc:  # onnxruntime raises many kinds
        if os.path.exists(out):
            os.remove(out)  # never leave a half-written graph
        text = str(exc).strip().splitlines()
        raise ExportError(f'quantizing {fp32_path} to {mode} failed ({type(exc).__name__}: '
                          f'{text[0][:300] if text else "no message"}); the fp32 graph is '
                          'unaffected: deploy it.') from None
    fp32, proto = onnx.load(fp32_path), onnx.load(out)
    del proto.metadata_props[:]
    for entry in fp32.metadata_props:
        proto.metadata_props.add().CopyFrom(entry)
    note = proto.metadata_props.add()
    note.key = 'quantization'
    note.value = (f'{mode}: onnxruntime dynamic quantization of {", ".join(QUANTIZED_OPS)} '
                  'weights (int8, per channel), activations quantized per call; other ops fp32')
    onnx.save(proto, out)
    return out
