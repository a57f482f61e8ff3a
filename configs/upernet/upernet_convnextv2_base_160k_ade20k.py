"""UperNet + ConvNeXt-V2-Base (IN-1K) on ADE20K at 512x512, 160k iterations.

Schedule: 160k iterations. Total batch size: 16. The V2 recipe shared by every size, with the
source of each value: upernet_convnextv2_tiny_160k_ade20k.py. This size differs only in: drop path
0.4 (as V1-B in the ConvNeXt paper's UperNet recipe).
"""
_base_ = './upernet_convnextv2_tiny_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v2-base', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_base_1k_224_ema.pt')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
