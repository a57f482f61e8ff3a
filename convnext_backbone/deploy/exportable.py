"""Which models export to a graph: the one place that decides (:func:`refusal`), and the list of
the shipped models it accepts (:func:`exportable_collections`), derived from it, which the
refusal names.

A detector exports when it is two-stage with a mask head (RPN + RoI head: Mask R-CNN, Cascade
Mask R-CNN); a segmentor when it is a plain ``EncoderDecoder`` whose decode head predicts
per-pixel logits (``conv_seg``: UperNet, DeepLabV3+); any model's backbone exports alone.
Query-based heads (Mask2Former, DINO) do not.
"""
import functools
import os
from typing import List, Optional

from torch import nn


def refusal(model: nn.Module, task: str) -> Optional[str]:
    """Why ``model`` cannot export as ``task`` ('detection', 'segmentation', 'backbone'), or
    None when it can."""
    kind = type(model).__name__
    if task == 'backbone':
        return None if hasattr(model, 'backbone') else f'model {kind} has no backbone'
    if task == 'segmentation':
        if not hasattr(model, 'decode_head') or kind == 'CascadeEncoderDecoder':
            return f'segmentor {kind} (only EncoderDecoder)'
        if not hasattr(model.decode_head, 'conv_seg'):  # query-based heads (Mask2Former)
            return (f'decode head {type(model.decode_head).__name__} (only heads that predict '
                    'per-pixel logits)')
        return None
    if not all(hasattr(model, a) for a in ('rpn_head', 'roi_head')) or \
            not getattr(model.roi_head, 'with_mask', False):
        return f'detector {kind} (only two-stage detectors with a mask head)'
    return None


def _model_index() -> str:
    """The model index the package ships (``convnext_backbone/.mim/model-index.yml``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '.mim',
                        'model-index.yml')


def collections(index: Optional[str] = None) -> dict:
    """{collection name: its configs (paths), smallest model first} of the model index."""
    import yaml
    index = index or _model_index()
    root = os.path.dirname(index)
    with open(index, encoding='utf-8') as f:
        imports = (yaml.safe_load(f) or {}).get('Import', [])
    found = {}
    for metafile in imports:
        with open(os.path.join(root, metafile), encoding='utf-8') as f:
            models = (yaml.safe_load(f) or {}).get('Models') or []
        for model in models:
            size = (model.get('Metadata') or {}).get('Parameters (M)') or float('inf')
            found.setdefault(model['In Collection'], []).append(
                (float(size), os.path.join(root, model['Config'])))
    return {name: [path for _, path in sorted(entries)] for name, entries in found.items()}


@functools.lru_cache(maxsize=None)
def exportable_collections(index: Optional[str] = None) -> List[str]:
    """The model index's collections whose models export whole, each decided by
    :func:`refusal` on its smallest config's model (built on the meta device: no weights)."""
    from .driver import build_model, load_config, task_of
    names = []
    for name, configs in collections(index).items():
        cfg = load_config(configs[0])
        if refusal(build_model(cfg, device='meta'), task_of(cfg)) is None:
            names.append(name)
    return names
