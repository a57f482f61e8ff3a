"""``torch.export`` programs (``.pt2``) of the backbone and segmentor wrappers: the same graphs as
the ONNX export (preprocessing and padding inside, batch dynamic), for PyTorch runtimes
(AOTInductor, ExecuTorch), with one limit the ONNX graphs do not have: H and W must be
multiples of the backbone's coarsest stride (32), at least twice it. ``torch.export`` proves
its shape guards for all sizes at once, and cannot for the floor divisions of other sizes
(UperNet's pyramid pooling), nor for a size of 1 at the coarsest stride (it specialises sizes
of 1). Load with ``torch.export.load(path).module()``. Detectors are ONNX only: their
post-processing has data-dependent shapes (how many boxes survive NMS) that ``torch.export``
would need custom operators for.
"""
import os
import warnings
from typing import Tuple

import torch
from torch import nn

from .errors import ExportError


def export_pt2(wrapper: nn.Module, task: str, out: str, shape: Tuple[int, int], stride: int = 32,
               static: bool = False, seed: int = 0) -> str:
    """Export ``wrapper`` with ``torch.export`` on a random batch of ``shape`` and save ``out``;
    without ``static``, H and W are dynamic multiples of ``stride`` (at least 2 of them)."""
    if task == 'detection':
        raise ExportError('a .pt2 (torch.export) program of a detector is not supported: its '
                          'NMS and RoI selection have data-dependent shapes. Export it to ONNX '
                          '(--out FILE.onnx), or its backbone with --backbone-only.')
    if not static and any(s % stride or s < 2 * stride for s in shape):
        up = [max(-(-int(s) // stride) * stride, 2 * stride) for s in shape]
        raise ExportError(f'--shape {shape[0]} {shape[1]}: a .pt2 program takes H and W that are '
                          f'multiples of {stride}, at least {2 * stride} (torch.export cannot '
                          f'prove its shape guards for other sizes); use e.g. --shape {up[0]} '
                          f'{up[1]} and pad the images to such sizes, or export to ONNX (any '
                          'size).')
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(1 if static else 2, 3, *shape, generator=generator) * 255
    dynamic = None if static else {'images': {
        0: torch.export.Dim('batch', min=1, max=1024),
        2: stride * torch.export.Dim('height_cells', min=2, max=1024),
        3: stride * torch.export.Dim('width_cells', min=2, max=1024)}}
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
