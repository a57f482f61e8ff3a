"""UperNet + ConvNeXt-V2-Nano (IN-1K) on ADE20K at 512x512, 160k iterations.

Schedule: 160k iterations. Total batch size: 16. The V2 recipe shared by every size, with the
source of each value: upernet_convnextv2_tiny_160k_ade20k.py. This size differs only in: drop path
0.2 (ours: between atto's 0.1 and tiny's; 0.2 is the V2 ImageNet fine-tuning value of tiny).
"""
_base_ = './upernet_convnextv2_tiny_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v2-nano', drop_path_rate=0.2, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_nano_1k_224_ema.pt')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))
