"""Our backbone and its peers (timm, mmpretrain) with one set of weights, for the benchmark.

Weights: our backbone is the source. Each peer gets them through our checkpoint converter run
backwards: ``convert_state_dict(peer.state_dict())`` renames the peer's tensors into our naming
without copying them (views only), so matching storage pointers gives the exact peer key (and
shape) for each of our keys; our tensor is then copied into it. The tool checks afterwards that
every peer computes the same features as ours.
"""
import re
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from convnext_backbone.checkpoint import convert_state_dict
from convnext_backbone.models import ConvNeXt

# our arch -> (timm model name, mmpretrain arch, mmpretrain kwargs)
V1 = ('tiny', 'small', 'base', 'large', 'xlarge')
V2 = ('atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge')
PEER_ARCHS = {f'v1-{n}': (f'convnext_{n}', n, {}) for n in V1}
PEER_ARCHS.update({f'v2-{n}': (f'convnextv2_{n}', n,
                               dict(use_grn=True, layer_scale_init_value=0.)) for n in V2})


def realistic_weights_(model: nn.Module, seed: int = 0) -> None:
    """Weights with trained-network magnitudes (variance-preserving convs/linears, layer scale and
    GRN ~0.1-0.5), so no implementation runs on the near-zero residual branches of a fresh init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if re.search(r'(gamma|beta)$', name):
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))
            elif param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * param[0].numel() ** -0.5)
            elif name.endswith('weight'):
                param.copy_(1 + 0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.05 * torch.randn(param.shape, generator=gen))


def copy_ours_into(peer: nn.Module, ours: nn.Module) -> int:
    """Copy our weights into ``peer`` through our converter (see the module docstring); returns
    the number of tensors copied. Every tensor the converter maps must be found."""
    peer_sd = peer.state_dict()
    by_ptr = {(t.data_ptr(), t.dtype): k for k, t in peer_sd.items()}
    converted = convert_state_dict(peer_sd)
    ours_sd = ours.state_dict()
    copied = 0
    with torch.no_grad():
        for key, tensor in converted.items():
            if key not in ours_sd:
                continue  # e.g. an output norm the peer has and we do not compute
            target = peer_sd[by_ptr[(tensor.data_ptr(), tensor.dtype)]]
            target.copy_(ours_sd[key].reshape(target.shape))
            copied += 1
    return copied


def build_backbones(arch: str, names: List[str], seed: int = 0) -> Dict[str, nn.Module]:
    """``{'ours': ..., 'timm': ..., 'mmpretrain': ...}`` (those in ``names``), same weights."""
    timm_name, mmp_arch, mmp_kw = PEER_ARCHS[arch]
    ours = ConvNeXt(arch=arch, out_indices=(0, 1, 2, 3))
    realistic_weights_(ours, seed)
    models = {'ours': ours}
    if 'timm' in names:
        import timm
        peer = timm.create_model(timm_name, pretrained=False, features_only=True)
        copy_ours_into(peer, ours)
        models['timm'] = peer
    if 'mmpretrain' in names:
        from mmpretrain.models.backbones import ConvNeXt as MMPConvNeXt
        peer = MMPConvNeXt(arch=mmp_arch, out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                           **mmp_kw)
        assert copy_ours_into(peer, ours) == len(ours.state_dict())
        models['mmpretrain'] = peer
    return models


def output_norms(ours: ConvNeXt):
    """timm's features_only outputs carry no output norm: apply ours to compare features."""
    def apply(feats):
        outs = []
        for i, feat in zip(ours.out_indices, feats):
            norm = getattr(ours, f'norm{i}')
            x = F.layer_norm(feat.permute(0, 2, 3, 1), norm.normalized_shape, norm.weight,
                             norm.bias, norm.eps)
            outs.append(x.permute(0, 3, 1, 2))
        return outs
    return apply


def max_rel_diff(outs, refs) -> float:
    return max(float((o - r).abs().max() / r.abs().max()) for o, r in zip(outs, refs))
