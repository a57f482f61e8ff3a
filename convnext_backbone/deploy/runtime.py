"""Run an exported graph in onnxruntime, with the input contract checked first."""
from typing import Dict, Sequence

import numpy as np

from .errors import ExportError


class OnnxModel:
    """An exported graph in an onnxruntime session (CPU unless ``providers`` names others, e.g.
    ``('CUDAExecutionProvider', 'CPUExecutionProvider')``): ``model(images) -> {name: array}``.

    ``images``: (N, 3, H, W) float32 (a torch tensor or numpy array), channels as loaded, values
    0-255, the image as the test pipeline resized it (unpadded: the graph pads); any H and W
    from the metadata's ``min_input_size`` (1 where the graph pads to the backbone's stride);
    N = 1 for detection graphs.
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
        self.min_input_size = int(self.metadata.get('min_input_size', 1))
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
        least = self.min_input_size
        if height < least or width < least:
            raise ExportError(f'images of size {height}x{width}: this graph takes H and W of at '
                              f'least {least} (its backbone downsamples by {least} and the '
                              'model pads nothing); resize the image as the test pipeline does '
                              "(metadata 'resize') or pad it.")
        return np.ascontiguousarray(images, dtype=np.float32)

    def __call__(self, images) -> Dict[str, np.ndarray]:
        outputs = self.session.run(None, {'images': self.check(images)})
        return dict(zip(self.output_names, outputs))
