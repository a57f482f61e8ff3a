"""The two UperNet ConvNeXt-T segmentors of the benchmark, our config and mmseg's own (whose
backbone is mmpretrain's), and a synthetic batch for them.
"""
import torch

from .host_models import build_pair

# mmseg's own ConvNeXt-T UperNet (mmpretrain backbone), from the installed mmseg
UPERNET_MMSEG = 'mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py'


def build_segmentors(ours_config: str, size: int, theirs_config: str = UPERNET_MMSEG,
                     seed: int = 0):
    """``{'ours': (model, optim_wrapper), 'mmseg': (...)}`` with identical weights; both data
    preprocessors pad to ``size`` x ``size`` (the configs' crop size is 512)."""
    def prepare(cfg):
        cfg.model.data_preprocessor.size = (size, size)
    return build_pair(ours_config, theirs_config, 'mmseg', seed, prepare)


def segmentation_batch(batch: int, size: int, num_classes: int = 150, seed: int = 0) -> dict:
    """Random uint8 images and label maps as SegDataSamples (what the data loader yields)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                             flip=False))
        labels = torch.randint(0, num_classes, (1, size, size), generator=gen)
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
