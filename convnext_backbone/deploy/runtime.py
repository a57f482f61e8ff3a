"""Run an exported graph in onnxruntime, with the input contract checked first."""
from typing import Dict, Sequence

import numpy as np

from .errors import ExportError


class OnnxModel:
    """An exported graph in an onnxruntime session (CPU unless ``providers`` names others, e.g.
    ``('CUDAExecutionProvider', 'CPUExecutionProvider')``): ``model(images) -> {name: array}``.

    ``images``: (N, 3, H, W) float32 (a torch tensor or numpy array), channels as loaded, values
    0-255, H and W multiples of ``size_divisor``; N = 1 for detection graphs.
    """

    def __init__(self, path: str, threads: int = 0,
                 providers: Sequence[str] = ('CPUExecutionProvider',)) -> None:
        import onnxruntime as ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=list(providers))
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.task = self.metadata.get('task', 'unknown')
        self.size_divisor = int(self.metadata.get('size_divisor', 1))
        self.output_names = [o.name for o in self.session.get_outputs()]

    def check(self, images) -> np.ndarray:
        images = images.detach().cpu().numpy() if hasattr(images, 'detach') else \
            np.asarray(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ExportError(f'images of shape {tuple(images.shape)}: the graph takes an '
                              '(N, 3, H, W) batch; add the batch axis or fix the channel axis.')
        if self.task == 'detection' and images.shape[0] != 1:
            raise ExportError(f'a batch of {images.shape[0]} images: the detection graph takes '
                              'one image at a time (N = 1); run it once per image.')
        static = self.metadata.get('static_shape')
        if static and tuple(images.shape) != tuple(int(v) for v in static.split()):
            raise ExportError(f'images of shape {tuple(images.shape)}: this graph was exported '
                              f'with --static for shape ({static.replace(" ", ", ")}) only; '
                              're-export without --static for other sizes.')
        height, width = images.shape[2:]
        divisor = self.size_divisor
        if height % divisor or width % divisor:
            up = [-(-s // divisor) * divisor for s in (height, width)]
            raise ExportError(f'images of size {height}x{width}: H and W must be multiples of '
                              f'{divisor}; pad them (bottom/right, as mmdet does) to '
                              f'{up[0]}x{up[1]}.')
        return np.ascontiguousarray(images, dtype=np.float32)

    def __call__(self, images) -> Dict[str, np.ndarray]:
        outputs = self.session.run(None, {'images': self.check(images)})
        return dict(zip(self.output_names, outputs))
