"""Test helpers: checkpoints laid out as the paper's released files, a model index listing them,
and a loopback HTTP server standing in for the release host.

The paper's COCO models were saved by mmcv 1.x's ``save_checkpoint`` under mmdet 2.11 (the Swin
Transformer detection code base the official code extends), its ADE20K models under mmseg 0.x
(BEiT's code base). Such a file is a torch zip file holding ``meta``, ``state_dict`` and
``optimizer``: the state dict is the model's ``state_dict()`` (an OrderedDict with its
``_metadata``), ``meta`` plain data: the library version (mmdet 2.x wrote ``__version__`` followed
by the git hash, mmseg 0.x ``__version__ + '+' + hash``), the config as text, ``CLASSES`` (a
tuple), for mmseg ``PALETTE`` (lists of RGB values), ``mmcv_version``, ``time``, ``epoch`` /
``iter``, ``env_info``, ``seed``, ``exp_name`` and ``hook_msgs``. Our backbone's names are the
paper's, and mmdet 3 / mmseg 1 name these heads as mmdet 2.11 / mmseg 0.x did: the name lists
below are written from the old libraries' module names, not from our models, and the tests check
the files carry them.
"""
import contextlib
import functools
import http.server
import os
import socket
import threading
from collections import OrderedDict
from pathlib import Path

import torch
import yaml

#: Key names as the paper's code and mmdet 2.11 name them in the released Mask R-CNN files.
MMDET_2_11_NAMES = (
    'backbone.downsample_layers.0.0.weight', 'backbone.downsample_layers.1.1.weight',
    'backbone.stages.0.0.dwconv.weight', 'backbone.stages.0.0.norm.weight',
    'backbone.stages.0.0.pwconv1.weight', 'backbone.stages.0.0.pwconv2.bias',
    'backbone.stages.0.0.gamma', 'backbone.norm0.weight', 'backbone.norm3.bias',
    'neck.lateral_convs.0.conv.weight', 'neck.fpn_convs.3.conv.bias',
    'rpn_head.rpn_conv.weight', 'rpn_head.rpn_cls.weight', 'rpn_head.rpn_reg.weight',
    'roi_head.bbox_head.shared_fcs.0.weight', 'roi_head.bbox_head.fc_cls.weight',
    'roi_head.bbox_head.fc_reg.weight', 'roi_head.mask_head.convs.0.conv.weight',
    'roi_head.mask_head.upsample.weight', 'roi_head.mask_head.conv_logits.weight')
#: ... and as mmseg 0.x names them in the released UperNet files.
MMSEG_0_X_NAMES = (
    'backbone.downsample_layers.0.0.weight', 'backbone.stages.2.2.gamma', 'backbone.norm2.weight',
    'decode_head.psp_modules.0.1.conv.weight', 'decode_head.psp_modules.3.1.bn.running_var',
    'decode_head.bottleneck.conv.weight', 'decode_head.lateral_convs.0.conv.weight',
    'decode_head.fpn_convs.2.conv.weight', 'decode_head.fpn_bottleneck.bn.weight',
    'decode_head.conv_seg.weight', 'auxiliary_head.convs.0.conv.weight',
    'auxiliary_head.conv_seg.bias')

OLD_DET_CONFIG = '''model = dict(
    type='MaskRCNN',
    pretrained=None,
    backbone=dict(type='ConvNeXt', in_chans=3, depths=[1, 1, 3, 1], dims=[32, 64, 128, 256],
                  drop_path_rate=0.05, layer_scale_init_value=1.0, out_indices=[0, 1, 2, 3]),
    neck=dict(type='FPN', in_channels=[32, 64, 128, 256], out_channels=64, num_outs=5))
data = dict(samples_per_gpu=2, workers_per_gpu=2)
optimizer = dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05,
                 constructor='LayerDecayOptimizerConstructor',
                 paramwise_cfg=dict(num_layers=6, layer_decay_rate=0.95,
                                    decay_type='layer_wise'))
lr_config = dict(policy='step', warmup='linear', warmup_iters=1000, step=[27, 33])
runner = dict(type='EpochBasedRunnerAmp', max_epochs=36)
fp16 = None
'''
OLD_SEG_CONFIG = '''norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    backbone=dict(type='ConvNeXt', in_chans=3, depths=[1, 1, 3, 1], dims=[32, 64, 128, 256],
                  drop_path_rate=0.05, layer_scale_init_value=1.0, out_indices=[0, 1, 2, 3]),
    decode_head=dict(type='UPerHead', in_channels=[32, 64, 128, 256], channels=64,
                     num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(type='FCNHead', in_channels=128, channels=32, num_classes=5,
                        norm_cfg=norm_cfg))
optimizer = dict(constructor='LearningRateDecayOptimizerConstructor', type='AdamW', lr=0.0001,
                 betas=(0.9, 0.999), weight_decay=0.05,
                 paramwise_cfg=dict(num_layers=6, layer_decay_rate=0.9,
                                    decay_type='stage_wise'))
runner = dict(type='IterBasedRunnerAmp')
'''


def old_meta(task: str, classes) -> dict:
    """The ``meta`` of a released file: plain data, as mmcv 1.x / mmdet 2.11 / mmseg 0.x wrote."""
    meta = dict(env_info='sys.platform: linux\nPython: 3.8.12\nCUDA available: True\n'
                         'PyTorch: 1.8.0\nMMCV: 1.3.0', seed=0, hook_msgs=dict(
                             last_ckpt='/checkpoint/convnext/work_dir/latest.pth'),
                mmcv_version='1.3.0', time='Tue Jan 11 08:01:25 2022', CLASSES=tuple(classes))
    if task == 'det':
        meta.update(exp_name='mask_rcnn_convnext_tiny_patch4_window7_mstrain_480-800_adamw_3x_'
                             'coco_in1k.py', config=OLD_DET_CONFIG,
                    mmdet_version='2.11.0' + '6a979e2', epoch=36, iter=263412)
    else:
        meta.update(exp_name='upernet_convnext_tiny_512_160k_ade20k_ms.py', config=OLD_SEG_CONFIG,
                    mmseg_version='0.11.0+3e2b0b4', epoch=9, iter=160000,
                    PALETTE=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50],
                             [4, 200, 3]][:len(classes)])
    return meta


def save_released(state_dict, path, task, classes, optimizer=None):
    """Write ``state_dict`` (a model's tensors) as the paper's released files are written."""
    state = OrderedDict((k, v.detach().cpu()) for k, v in state_dict.items())
    state._metadata = getattr(state_dict, '_metadata', OrderedDict())
    checkpoint = {'meta': old_meta(task, classes), 'state_dict': state}
    if optimizer is not None:
        checkpoint['optimizer'] = optimizer
    torch.save(checkpoint, path)  # torch >= 1.6: the zip format, as the 2021/2022 files are
    return Path(path)


def write_model_index(folder, entries):
    """A model index (``model-index.yml`` + one metafile) listing ``entries``:
    ``(name, absolute config path, Weights URL, metrics)``. Returns the index file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = [{'Name': name, 'In Collection': 'Toy', 'Config': str(config),
               'Metadata': {'Training Data': 'toy'},
               'Results': [{'Task': 'toy', 'Dataset': 'toy', 'Metrics': metrics}],
               'Weights': url} for name, config, url, metrics in entries]
    (folder / 'metafile.yml').write_text(yaml.safe_dump(
        {'Collections': [{'Name': 'Toy'}], 'Models': models}, sort_keys=False))
    (folder / 'model-index.yml').write_text(yaml.safe_dump({'Import': ['metafile.yml']}))
    return folder / 'model-index.yml'


class ReleaseServer:
    """A folder served over HTTP on 127.0.0.1 (a free port) by a thread. ``requests`` records the
    paths asked for; ``cut_next(name)`` makes the next transfer of ``name`` stop after half its
    bytes, the server closing the connection (the announced length stays the whole file)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.requests, self.cut = [], set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def log_request(self, *args):
                server.requests.append(self.path)

            def copyfile(self, source, outputfile):
                name = os.path.basename(self.path)
                if name not in server.cut:
                    return super().copyfile(source, outputfile)
                server.cut.discard(name)
                data = source.read()
                outputfile.write(data[:len(data) // 2])
                outputfile.flush()
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(Handler, directory=str(self.folder)))
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def cut_next(self, name):
        self.cut.add(name)

    def asked(self, name):
        """How many times ``name`` was requested."""
        return sum(1 for path in self.requests if os.path.basename(path) == name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def served(folder):
    server = ReleaseServer(folder)
    try:
        yield server
    finally:
        server.close()


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: a machine without internet, in effect."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}'
