"""Where an int8 graph departs from its fp32 graph: the signal-to-quantisation-noise ratio
(SQNR, dB) of each quantized layer's output on the same image, in graph order.

Both graphs keep the fp32 graph's node and tensor names (a layer whose ReLU the quantization
absorbed reports the ReLU's output), so the two runs can be compared tensor by tensor. The
errors accumulate down the network: a layer's figure is the damage up to and including it, and
the layers where the figure drops most are the ones to keep in fp32
(``quantize.KEEP_FP32``). 20 dB is an error of 10% of the signal's RMS, 30 dB 3%.
"""
from typing import List, Tuple

import numpy as np

LAYER_OPS = ('Conv', 'MatMul', 'Gemm')


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(|reference|^2 / |reference - other|^2); inf when they are equal."""
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    noise = np.square(reference - other).sum()
    signal = np.square(reference).sum()
    return float('inf') if noise == 0 else float(10 * np.log10(max(signal, 1e-30) / noise))


def after_roi_selection(model) -> set:
    """The tensors of ``model`` computed from a RoIAlign's output (a detector's RoI heads and
    outputs): they follow each graph's own proposals, so two graphs' differ in what they
    describe, not only in precision."""
    downstream = set()
    for node in model.graph.node:  # ONNX graphs list nodes in topological order
        if node.op_type == 'RoiAlign' or any(i in downstream for i in node.input):
            downstream.update(node.output)
    return downstream


def quantized_layers(int8, fp32) -> List[Tuple[str, str, str]]:
    """(node name, output tensor, tensor to compare in ``int8``) of the layers of ``int8`` (an
    ``onnx.ModelProto``) whose weights are dequantized int8 and whose output the fp32 graph also
    has. The int8 side is compared after its own quantize -> dequantize where it has one: that
    is what the next layer reads (a ReLU the quantization absorbed is the clip at 0 there)."""
    nodes = int8.graph.node
    dequantized = {o for n in nodes if n.op_type == 'DequantizeLinear' for o in n.output}
    fp32_tensors = {o for n in fp32.graph.node for o in n.output} - after_roi_selection(fp32)
    quantize_of = {n.input[0]: n.output[0] for n in nodes if n.op_type == 'QuantizeLinear'}
    dequantize_of = {n.input[0]: n.output[0] for n in nodes if n.op_type == 'DequantizeLinear'}
    return [(n.name, n.output[0],
             dequantize_of.get(quantize_of.get(n.output[0]), n.output[0]))
            for n in nodes if n.op_type in LAYER_OPS and n.input[1] in dequantized
            and n.output[0] in fp32_tensors]


def _run_with_outputs(model, tensors: List[str], images: np.ndarray) -> dict:
    import onnx
    import onnxruntime as ort
    model = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors if t not in present)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {'images': images})))


def layer_sqnr(fp32_path: str, int8_path: str, images: np.ndarray) -> List[Tuple[str, float]]:
    """(layer name, SQNR dB of its output) for every quantized layer, in graph order, then
    ('output NAME', dB) for each graph output; a detector's RoI heads and outputs are left
    out (:func:`after_roi_selection`: compare its detections instead)."""
    import onnx
    fp32, int8 = onnx.load(fp32_path), onnx.load(int8_path)
    layers = quantized_layers(int8, fp32)
    ours = _run_with_outputs(fp32, [t for _, t, _ in layers], images)
    theirs = _run_with_outputs(int8, [q for _, _, q in layers], images)
    report = [(name, sqnr_db(ours[t], theirs[q])) for name, t, q in layers
              if ours[t].shape == theirs[q].shape and ours[t].size]
    selected = after_roi_selection(fp32)
    for output in fp32.graph.output:
        if output.name in selected:
            continue
        a, b = ours[output.name], theirs[output.name]
        if a.shape == b.shape and a.size and a.dtype.kind == 'f':
            report.append((f'output {output.name}', sqnr_db(a, b)))
    return report


def summary(report: List[Tuple[str, float]], worst: int = 3) -> str:
    """One line: the outputs' SQNR and the ``worst`` layers (lowest SQNR, the first of a run
    of equal figures)."""
    outputs = [f'{name[7:]} {db:.1f} dB' for name, db in report if name.startswith('output ')]
    layers = sorted(((db, name) for name, db in report if not name.startswith('output ')))
    shown = ', '.join(f'{name} {db:.1f} dB' for db, name in layers[:worst])
    return (f"int8 vs fp32 SQNR: {', '.join(outputs) or 'outputs not comparable'}; "
            f'lowest layers: {shown or "none"}')
