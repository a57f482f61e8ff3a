"""UperNet + ConvNeXt-V2-Atto (IN-1K) on ADE20K at 512x512, 160k iterations.

Schedule: 160k iterations. Total batch size: 16. The V2 recipe shared by every size, with the
source of each value: upernet_convnextv2_tiny_160k_ade20k.py. This size differs only in: drop path
0.1 (ours: light regularisation for a small net; 0.1 is the V2 ImageNet fine-tuning value of atto).
"""
_base_ = './upernet_convnextv2_tiny_160k_ade20k.py'

model = dict(
    backbone=dict(arch='v2-atto', drop_path_rate=0.1, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
        'convnextv2_atto_1k_224_ema.pt')),
    decode_head=dict(in_channels=[40, 80, 160, 320]),
    auxiliary_head=dict(in_channels=160))
