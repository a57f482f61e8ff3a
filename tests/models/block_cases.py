"""The blocks and inputs the fast-path tests compare (test_fast_paths.py, and the decision
table of test_fast_path_decision.py)."""
import copy

import torch

from convnext_backbone.models.block import ConvNeXtBlock

from checkpoint_layouts import randomise_


def make_block(channels=16, grn=False, layer_scale=0.5, drop_path=0., seed=0, dilation=1):
    """A block with trained-like random weights and its copy computing op by op."""
    torch.manual_seed(seed)
    block = ConvNeXtBlock(channels, drop_path_rate=drop_path, layer_scale_init_value=layer_scale,
                          grn=grn, dilation=dilation)
    randomise_(block, seed=seed)
    plain = copy.deepcopy(block)
    plain.fast_path = False
    return block, plain


def make_input(n, c, h, w, channels_last=True, seed=1):
    """A seeded NCHW input, channels-last unless asked otherwise."""
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
