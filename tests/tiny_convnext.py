"""The tiny ConvNeXt the checkpoint tests load weights into (4 stages, a few channels)."""
from convnext_backbone.models import ConvNeXt

from checkpoint_layouts import randomise_

DEPTHS, CHANNELS = (1, 1, 2, 1), (8, 16, 24, 32)
TINY = {False: dict(depths=list(DEPTHS), channels=list(CHANNELS), grn=False),
        True: dict(depths=list(DEPTHS), channels=list(CHANNELS), grn=True)}


def ours(grn=False, **kwargs) -> ConvNeXt:
    return ConvNeXt(arch=TINY[grn], **kwargs).eval()


def randomised_ours(grn=False, seed=11, **kwargs) -> ConvNeXt:
    model = ours(grn, **kwargs)
    randomise_(model, seed=seed)
    return model
