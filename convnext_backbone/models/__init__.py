"""The ConvNeXt backbone, its arch table and its layers.

Importing this module registers ``ConvNeXt`` in ``convnext_backbone.registry.MODELS``.
"""
from .archs import ARCH_SETTINGS, ArchSpec, arch_names, resolve_arch
from .block import ConvNeXtBlock
from .convnext import DECAY_TYPES, ConvNeXt
from .layers import GRN, DropPath, LayerNorm2d, drop_path

__all__ = ['ARCH_SETTINGS', 'ArchSpec', 'arch_names', 'resolve_arch', 'ConvNeXt', 'DECAY_TYPES',
           'ConvNeXtBlock', 'DropPath', 'GRN', 'LayerNorm2d', 'drop_path']
