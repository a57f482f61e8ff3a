"""Exportable wrappers of the backbone alone and of an mmseg encoder-decoder segmentor.

The segmentor graph is mmseg's whole-image inference (``test_cfg.mode='whole'``) of one image
size: the preprocessing (padding only where the preprocessor's ``test_cfg`` asks for it), the
backbone, neck (if any) and decode head, the logits resized to the network's input size (the
decode head's ``predict_by_feat``) and the padding cut off (``postprocess_result``): what
mmseg holds before its final resize to the original image. The decode head is a copy whose
adaptive pooling layers (UperNet's pyramid pooling) are the dynamic-size ones of ``ops``; the
trained layers are shared with the model, not copied. Auxiliary heads are not used at inference.
"""
import copy
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from .ops import replace_adaptive_pooling
from .preprocess import Preprocess


class BackboneExport(nn.Module):
    """Images (as the data preprocessor receives them) -> the backbone's feature maps."""

    def __init__(self, backbone: nn.Module, data_preprocessor: nn.Module = None) -> None:
        """``data_preprocessor``: normalise and pad as it does (None: the graph takes the
        backbone's own input)."""
        super().__init__()
        self.preprocess = Preprocess(data_preprocessor) if data_preprocessor is not None \
            else None
        self.backbone = backbone

    @property
    def output_names(self):
        return [f'feat{i}' for i in self.backbone.out_indices]

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        x = self.preprocess(images) if self.preprocess is not None else images
        return tuple(self.backbone(x))


def _head_copy(head: nn.Module) -> nn.Module:
    """A shallow structural copy of ``head`` (parameters and buffers shared with the original)
    in which ``nn.AdaptiveAvgPool2d`` layers are replaced by exportable ones."""
    memo = {id(t): t for t in list(head.parameters()) + list(head.buffers())}
    clone = copy.deepcopy(head, memo)
    replace_adaptive_pooling(clone)
    return clone


class SegmentorExport(nn.Module):
    """Images -> ``seg_logits`` (N, num_classes, H, W) at the input size, as mmseg's
    ``EncoderDecoder.predict`` computes them in whole-image mode before resizing them to the
    original image and taking the argmax."""

    output_names = ['seg_logits']

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.preprocess = Preprocess(model.data_preprocessor)
        self.backbone = model.backbone
        self.neck = model.neck if getattr(model, 'with_neck', False) else None
        self.decode_head = _head_copy(model.decode_head)
        self.align_corners = bool(getattr(model.decode_head, 'align_corners', False))

    def forward(self, images: Tensor) -> Tensor:
        inputs = self.preprocess(images)
        x = self.backbone(inputs)
        if self.neck is not None:
            x = self.neck(x)
        logits = F.interpolate(self.decode_head(x), size=inputs.shape[2:], mode='bilinear',
                               align_corners=self.align_corners)
        if self.preprocess.pads:
            logits = logits[:, :, :images.shape[2], :images.shape[3]]
        return logits
