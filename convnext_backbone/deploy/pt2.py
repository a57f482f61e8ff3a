"""``torch.export`` programs (``.pt2``) of the backbone and segmentor wrappers: the same graphs as
the ONNX export (preprocessing and padding inside, H and W dynamic from ``minimum`` up, batch
dynamic), for PyTorch runtimes (AOTInductor, ExecuTorch). Load with ``torch.export.load(path)
.module()``. Detectors are ONNX only: their post-processing has data-dependent shapes (how many
boxes survive NMS) that ``torch.export`` would need custom operators for.
"""
import os
import warnings
from typing import Tuple

import torch
from torch import nn

from .errors import ExportError


def export_pt2(wrapper: nn.Module, task: str, out: str, shape: Tuple[int, int], minimum: int = 1,
               static: bool = False, seed: int = 0) -> str:
    """Export ``wrapper`` with ``torch.export`` on a random batch of ``shape`` and save ``out``."""
    if task == 'detection':
        raise ExportError('a .pt2 (torch.export) program of a detector is not supported: its '
                          'NMS and RoI selection have data-dependent shapes. Export it to ONNX '
                          '(--out FILE.onnx), or its backbone with --backbone-only.')
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(1 if static else 2, 3, *shape, generator=generator) * 255
    dynamic = None if static else {'images': {
        0: torch.export.Dim('batch', min=1, max=1024),
        2: torch.export.Dim('height', min=max(minimum, 2), max=32768),
        3: torch.export.Dim('width', min=max(minimum, 2), max=32768)}}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            program = torch.export.export(wrapper, (images,), dynamic_shapes=dynamic,
                                          strict=False)
        except Exception as exc:  # torch.export raises many kinds; name the first line
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''
            raise ExportError(f'torch.export failed for the {task} graph: '
                              f'{type(exc).__name__}: {first}') from None
    torch.export.save(program, out)
    return out
