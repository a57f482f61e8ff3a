"""A reference pair for checking a port of an exported graph (``tools/export.py --reference
DIR``): an image file and what the graph gives on it, as files any language reads.

A deployer without Python ports the preprocessing from the graph's metadata alone (``load``: how
to decode the file; ``resize``: the size rule written out and the resize call) and checks the
port against the pair: decode ``image.*``, resize it by the metadata, feed the graph, compare
with ``<output>.npy`` within the manifest's tolerances. DIR holds:

* ``image.<ext>``: the image file, copied byte for byte (decode it yourself, as the metadata's
  ``load`` says);
* ``images.npy``: the graph's input, (1, 3, H, W) float32, made by the config's own test pipeline
  (mmcv's loading and resize, the host's path), to check the preprocessing on its own;
* ``<output>.npy``: each graph output on that input (onnxruntime, CPU);
* ``metadata.json``: the graph's ``metadata_props`` (for runtimes that do not read them);
* ``reference.json``: the manifest: the original and preprocessed sizes, the scale factor, each
  array's file, shape, dtype and tolerance (max absolute difference), and how to compare.
"""
import json
import os
import shutil
from typing import Optional

import numpy as np

from .errors import ExportError

# Max |difference| a port's results may have, per output (the graph run by another runtime or
# build: float reordering only): boxes in input pixels, scores, mask probabilities, logits and
# features; integer outputs (labels) exactly. The input: 0 with OpenCV's resize (the host's),
# up to 1 grey level with another library's implementation of the same interpolation.
TOLERANCES = {'images': 1.0, 'boxes': 0.05, 'scores': 1e-4, 'masks': 1e-3, 'seg_logits': 1e-3}
FEATURES = 1e-3
COMPARE = ('Decode image (metadata load), resize it by metadata resize (rule, then resample), '
           'lay it out as images (1, 3, new_h, new_w) float32 in the loaded channel order and run '
           'the graph. Each array must match its file within tolerance (max absolute '
           'difference; integer arrays exactly). Detections: the same count; detections whose '
           'scores are within the scores tolerance may come in either order.')


def reference_image(cfg, given: Optional[str] = None) -> str:
    """The reference's image file: ``given`` (the first ``--verify-image``), else an image of
    the config's val set."""
    if given:
        return given
    from .calibration import val_images
    try:
        return val_images(cfg, 1)[0]
    except ExportError:
        raise ExportError("--reference needs an image file: the config's val set could not be "
                          'read; give one with --verify-image PATH.') from None


def write_reference(graph_path: str, cfg, image: str, out_dir: str) -> dict:
    """Write the reference pair of the ONNX graph ``graph_path`` (exported from ``cfg``) on the
    image file ``image`` into ``out_dir`` (a pair written there before is replaced, its files
    removed); returns the manifest, with ``replaced``: whether there was one."""
    from .runtime import OnnxModel
    from .verify import graph_input
    graph = OnnxModel(graph_path)
    prepared = graph_input(cfg, image)
    images = prepared['images'].numpy()
    outputs = graph(images)
    os.makedirs(out_dir, exist_ok=True)
    replaced = _remove_earlier_pair(out_dir)
    name = 'image' + os.path.splitext(image)[1].lower()
    shutil.copyfile(image, os.path.join(out_dir, name))
    arrays = {'images': images, **outputs}
    entries = {}
    for key, array in arrays.items():
        np.save(os.path.join(out_dir, f'{key}.npy'), array)
        integer = np.issubdtype(array.dtype, np.integer)
        entries[key] = {'file': f'{key}.npy', 'shape': list(array.shape),
                        'dtype': str(array.dtype),
                        'tolerance': 0 if integer else TOLERANCES.get(key, FEATURES)}
    with open(os.path.join(out_dir, 'metadata.json'), 'w') as f:
        json.dump(graph.metadata, f, indent=1, sort_keys=True)
    height, width = images.shape[2:]
    manifest = {
        'graph': os.path.basename(graph_path), 'task': graph.metadata.get('task'),
        'image': name, 'source_image': os.path.basename(image),
        'original_size': dict(zip(('height', 'width'), map(int, prepared['ori_shape']))),
        'input_size': {'height': int(height), 'width': int(width)},
        'scale_factor': [float(v) for v in prepared['scale_factor']],
        'input': entries.pop('images'), 'outputs': entries, 'compare': COMPARE}
    with open(os.path.join(out_dir, 'reference.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return {**manifest, 'replaced': replaced}


def _remove_earlier_pair(out_dir: str) -> bool:
    """The files of a pair written into ``out_dir`` before (those its manifest names), so no
    array of another graph stays beside the new pair; returns whether there was one."""
    path = os.path.join(out_dir, 'reference.json')
    if not os.path.isfile(path):
        return False
    try:
        with open(path) as f:
            earlier = json.load(f)
        names = [earlier['image'], earlier['input']['file'],
                 *(spec['file'] for spec in earlier['outputs'].values()), 'metadata.json',
                 'reference.json']
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ExportError(f'--reference {out_dir} holds a reference.json that is not a '
                          'reference pair manifest: give another folder.') from None
    for name in names:
        if os.path.basename(name) == name and os.path.isfile(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    return True
