"""The configs of the ConvNeXt paper's 13 released models test with the official settings.

Every test-time setting that changes a score (the test resize, normalisation, padding, the RPN and
R-CNN test settings, RoIAlign, box decoding, the sliding window, the multi-scale + flip test of
``--tta``) is pinned, one row each, to the value of the official config and the file, line and key
it comes from. docs/evaluation.md shows the same table. Our side is read as the host reads it:
pipeline steps and the data preprocessor are built and their attributes read (the padding is
measured on an image), the model is built (meta device: no memory) and the heads' own
``test_cfg`` read, and the ``--tta`` model is what ``tools/test.py --tta`` builds.

Official sources (read at these commits):
- ``CNX``: facebookresearch/ConvNeXt @ 048efce, object_detection/ and semantic_segmentation/.
- ``DET``: SwinTransformer/Swin-Transformer-Object-Detection @ 6a979e2, the mmdet 2.11.0 tree the
  detection configs run in (their ``../_base_/datasets/coco_instance.py``, mmdet's code).
- ``SEG``: mmsegmentation 0.11.0, what BEiT's semantic_segmentation (the tree the segmentation
  configs run in) installs: its ``configs/_base_/datasets/ade20k*.py`` and ``tools/test.py``.
"""
import copy
import functools
import importlib
import math
from typing import Any, Callable, NamedTuple

import pytest
import torch

from config_helpers import build, load, registry
from conftest import load_tool, one_per_family_fast

CNX = 'ConvNeXt@048efce'
DET = 'Swin-Transformer-Object-Detection@6a979e2'
SEG = 'mmsegmentation@v0.11.0'
CNX_DET, CNX_SEG = f'{CNX} object_detection/configs', f'{CNX} semantic_segmentation/configs'
MASK_BASE = f'{CNX_DET}/_base_/models/mask_rcnn_convnext_fpn.py'
CASCADE_BASE = f'{CNX_DET}/_base_/models/cascade_mask_rcnn_convnext_fpn.py'
UPER_BASE = f'{CNX_SEG}/_base_/models/upernet_convnext.py'
COCO = f'{DET} configs/_base_/datasets/coco_instance.py'
DET_TRANSFORMS = f'{DET} mmdet/datasets/pipelines/transforms.py'
MMSEG_TTA = f'{SEG} tools/test.py --aug-test'
TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
#: lines of the official model bases' test settings. The cascade base's test_cfg.rpn also sets
#: nms_across_levels=False and nms_post=1000 (:198, :200), which mmdet 2.11's RPNHead does not
#: read (only GARPNHead does): max_per_img=1000 governs.
BASE_LINES = {
    MASK_BASE: dict(rpn='120-121', rpn_nms='122', min_bbox_size='123', rcnn='125-128',
                    rcnn_nms='126', bbox_roi='47', mask_roi='66', strides='49'),
    CASCADE_BASE: dict(rpn='199,201', rpn_nms='202', min_bbox_size='203', rcnn='205-208',
                       rcnn_nms='206', bbox_roi='49', mask_roi='106', strides='51'),
}

_MASK = 'mask_rcnn_convnext_tiny_patch4_window7_mstrain_480-800_adamw_3x_coco_in1k.py'
_CASCADE = ('cascade_mask_rcnn_convnext_{}_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x'
            '_coco_{}.py')
#: our config -> (family, the official config of the same released model)
PAPER_CONFIGS = {
    'configs/maskrcnn_convnext_t_coco.py': ('maskrcnn', _MASK),
    'configs/maskrcnn/maskrcnn_convnext_t_3x_coco.py': ('maskrcnn', _MASK),
    **{f'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_{ours}_3x_coco.py':
       ('cascade', _CASCADE.format(name, pre)) for ours, name, pre in (
           ('t', 'tiny', 'in1k'), ('s', 'small', 'in1k'), ('b', 'base', 'in1k'),
           ('b_in22k', 'base', 'in22k'), ('l_in22k', 'large', 'in22k'),
           ('xl_in22k', 'xlarge', 'in22k'))},
    **{f'configs/upernet/upernet_convnext_{ours}_160k_ade20k.py':
       ('upernet', f'upernet_convnext_{name}_{crop}_160k_ade20k') for ours, name, crop in (
           ('t', 'tiny', 512), ('s', 'small', 512), ('b', 'base', 512),
           ('b_in22k_640', 'base', 640), ('l_in22k_640', 'large', 640),
           ('xl_in22k_640', 'xlarge', 640))},
}


class Row(NamedTuple):
    setting: str
    official: Any
    source: str
    ours: Callable  # Ours -> the value our config gives


class Ours:
    """What the host makes of one of our configs: built once, read by the rows."""

    def __init__(self, path):
        self.cfg = load(path)

    @functools.cached_property
    def model(self):
        return build(self.cfg, 'meta')

    @functools.cached_property
    def preprocessor(self):
        return registry(self.cfg).build(copy.deepcopy(self.cfg.model.data_preprocessor))

    @functools.cached_property
    def tta_model(self):
        """The model ``tools/test.py --tta`` tests with."""
        cfg = copy.deepcopy(self.cfg)
        load_tool('test').use_tta(cfg)
        return build(cfg, 'meta')

    def transforms(self, pipeline, type_):
        registry(self.cfg)  # activates the config's scope
        transforms = importlib.import_module(f'{self.cfg.default_scope}.registry').TRANSFORMS
        return [transforms.build(copy.deepcopy(s)) for s in pipeline if s['type'] == type_]

    def test_step(self, type_):
        steps = self.transforms(self.cfg.test_dataloader.dataset.pipeline, type_)
        assert len(steps) <= 1, f'{len(steps)} {type_} steps in the test pipeline'
        return steps[0] if steps else None

    def tta_steps(self, type_):
        aug, = [s for s in self.cfg.tta_pipeline if s['type'] == 'TestTimeAug']
        return self.transforms([t for group in aug['transforms'] for t in group], type_)

    def preprocess(self, img):
        """One uint8 CHW image (BGR, as cv2 loads it) through the data preprocessor at test."""
        structures = importlib.import_module(f'{self.cfg.default_scope}.structures')
        sample = getattr(structures, 'DetDataSample', None) or structures.SegDataSample
        batch = dict(inputs=[img], data_samples=[sample(metainfo=dict(img_shape=img.shape[1:]))])
        return self.preprocessor(batch, training=False)['inputs'][0]

    @property
    def channel_order(self):
        """The order of the channels the network gets."""
        red = torch.zeros((3, 8, 8), dtype=torch.uint8)
        red[2] = 255  # BGR: pure red
        out = self.preprocess(red)
        return 'RGB' if out[0].mean() > out[2].mean() else 'BGR'

    def padded(self, h=65, w=35):
        """A constant h x w image through the data preprocessor at test time: (the size it
        comes out, the values of the pixels added by padding, in normalised units)."""
        out = self.preprocess(torch.full((3, h, w), 200, dtype=torch.uint8))
        pad = torch.cat([out[:, h:, :].flatten(), out[:, :, w:].flatten()])
        return tuple(out.shape[1:]), sorted(set(pad.tolist()))

    def rcnn_heads(self, attr):
        head = getattr(self.model.roi_head, attr)
        return list(head) if isinstance(head, torch.nn.ModuleList) else [head]


def alike(values):
    """The value every R-CNN stage shares (Mask R-CNN has one), or the list where they differ."""
    return values[0] if all(v == values[0] for v in values) else values


def flips(step):
    return bool(step is not None and step.prob)


def roi_align(extractor):
    layer = extractor.roi_layers[0]
    return dict(output_size=tuple(layer.output_size), sampling_ratio=layer.sampling_ratio,
                aligned=layer.aligned)


def resize(step):
    return dict(interpolation=step.interpolation, backend=step.backend, keep_ratio=step.keep_ratio)


def detection_rows(official):
    cascade = official.startswith('cascade')
    leaf = f'{CNX_DET}/convnext/{official}'
    base = CASCADE_BASE if cascade else MASK_BASE
    line = BASE_LINES[base]
    rows = [
        Row('test scale (long, short)', (1333, 800), f'{COCO}:19 MultiScaleFlipAug.img_scale',
            lambda o: tuple(o.test_step('Resize').scale)),
        Row('test resize', dict(interpolation='bilinear', backend='cv2', keep_ratio=True),
            f'{COCO}:22 Resize(keep_ratio=True); {DET_TRANSFORMS}:72 backend=cv2, :207 '
            'mmcv.imrescale (bilinear)', lambda o: resize(o.test_step('Resize'))),
        Row('test-time flip', False, f'{COCO}:20 flip=False',
            lambda o: flips(o.test_step('RandomFlip'))),
        Row('normalisation mean (RGB)', [123.675, 116.28, 103.53], f'{COCO}:3-4 img_norm_cfg.mean',
            lambda o: o.preprocessor.mean.flatten().tolist()),
        Row('normalisation std (RGB)', [58.395, 57.12, 57.375], f'{COCO}:3-4 img_norm_cfg.std',
            lambda o: o.preprocessor.std.flatten().tolist()),
        Row('channel order (BGR images)', 'RGB', f'{COCO}:4 img_norm_cfg.to_rgb=True',
            lambda o: o.channel_order),
        Row('a 65x35 image padded to; pad pixels (normalised)', ((96, 64), [0.0]),
            f'{COCO}:24-25 Normalize then Pad(size_divisor=32); {DET_TRANSFORMS}:489 pad_val=0',
            lambda o: o.padded()),
        Row('test batch size', 1, f'{DET} tools/test.py:138-141 samples_per_gpu=1',
            lambda o: o.cfg.test_dataloader.batch_size),
        Row('test precision', 'fp32', f'{leaf}:{139 if cascade else 80} fp16 = None',
            lambda o: 'fp16' if o.cfg.test_cfg.get('fp16') else 'fp32'),
        Row('RPN anchors (scales, ratios, strides)', ([8.], [0.5, 1., 2.], [4, 8, 16, 32, 64]),
            f'{base}:31-35 rpn_head.anchor_generator',
            lambda o: (o.model.rpn_head.prior_generator.scales.tolist(),
                       o.model.rpn_head.prior_generator.ratios.tolist(),
                       [s[0] for s in o.model.rpn_head.prior_generator.strides])),
        Row('RPN box deltas (means, stds)', ((0.,) * 4, (1.,) * 4),
            f'{base}:36-39 rpn_head.bbox_coder',
            lambda o: (o.model.rpn_head.bbox_coder.means, o.model.rpn_head.bbox_coder.stds)),
        Row('RPN test (nms_pre, max_per_img)', (1000, 1000),
            f"{base}:{line['rpn']} test_cfg.rpn",
            lambda o: tuple(o.model.rpn_head.test_cfg[k] for k in ('nms_pre', 'max_per_img'))),
        Row('RPN test NMS', dict(type='nms', iou_threshold=0.7),
            f"{base}:{line['rpn_nms']} test_cfg.rpn.nms",
            lambda o: o.model.rpn_head.test_cfg.nms),
        Row('RPN test min_bbox_size', 0, f"{base}:{line['min_bbox_size']} test_cfg.rpn",
            lambda o: o.model.rpn_head.test_cfg.min_bbox_size),
        Row('R-CNN test (score_thr, max_per_img, mask_thr_binary)', (0.05, 100, 0.5),
            f"{base}:{line['rcnn']} test_cfg.rcnn",
            lambda o: tuple(o.model.roi_head.test_cfg[k]
                            for k in ('score_thr', 'max_per_img', 'mask_thr_binary'))),
        Row('R-CNN test NMS', dict(type='nms', iou_threshold=0.5),
            f"{base}:{line['rcnn_nms']} test_cfg.rcnn.nms",
            lambda o: o.model.roi_head.test_cfg.nms),
        Row('box RoIAlign', dict(output_size=(7, 7), sampling_ratio=0, aligned=True),
            f"{base}:{line['bbox_roi']} bbox_roi_extractor.roi_layer (mmcv 1.3 RoIAlign: "
            'aligned=True)',
            lambda o: alike([roi_align(e) for e in o.rcnn_heads('bbox_roi_extractor')])),
        Row('mask RoIAlign', dict(output_size=(14, 14), sampling_ratio=0, aligned=True),
            f"{base}:{line['mask_roi']} mask_roi_extractor.roi_layer",
            lambda o: alike([roi_align(e) for e in o.rcnn_heads('mask_roi_extractor')])),
        Row('RoI level mapping (featmap strides, finest_scale)', ([4, 8, 16, 32], 56),
            f"{base}:{line['strides']} featmap_strides; {DET} mmdet/models/roi_heads/"
            'roi_extractors/single_level_roi_extractor.py:27 finest_scale=56',
            lambda o: alike([(e.featmap_strides, e.finest_scale)
                             for e in o.rcnn_heads('bbox_roi_extractor')])),
        Row('mask head class-agnostic', False, f'{DET} mmdet/models/roi_heads/mask_heads/'
            'fcn_mask_head.py:29 class_agnostic=False',
            lambda o: alike([h.class_agnostic for h in o.rcnn_heads('mask_head')])),
    ]
    if cascade:
        stds = [(0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067)]
        rows += [
            Row('R-CNN stages (test averages their class scores)', ('CascadeRoIHead', 3),
                f'{CASCADE_BASE}:44-45 roi_head.type, num_stages',
                lambda o: (type(o.model.roi_head).__name__, o.model.roi_head.num_stages)),
            Row('R-CNN box deltas per stage (stds)', stds,
                f'{leaf}:39,58,77 bbox_coder.target_stds',
                lambda o: [h.bbox_coder.stds for h in o.rcnn_heads('bbox_head')]),
            Row('R-CNN class-specific box regression', False,
                f'{leaf}:40,59,78 reg_class_agnostic=False',
                lambda o: alike([h.reg_class_agnostic for h in o.rcnn_heads('bbox_head')])),
        ]
    else:
        rows += [
            Row('R-CNN box deltas (stds)', (0.1, 0.1, 0.2, 0.2),
                f'{MASK_BASE}:56-59 bbox_coder.target_stds',
                lambda o: o.model.roi_head.bbox_head.bbox_coder.stds),
            Row('R-CNN class-specific box regression', False,
                f'{MASK_BASE}:60 reg_class_agnostic=False',
                lambda o: o.model.roi_head.bbox_head.reg_class_agnostic),
        ]
    return rows


def segmentation_rows(official):
    crop = 640 if '_640_' in official else 512
    scale, stride = (crop * 4, crop), {512: 341, 640: 426}[crop]
    ade = f"{SEG} configs/_base_/datasets/ade20k{'_640x640' if crop == 640 else ''}.py"
    ss, ms = f'{CNX_SEG}/convnext/{official}_ss.py', f'{CNX_SEG}/convnext/{official}_ms.py'
    shift = -1 if '_small_' in official else 0  # its backbone dict has one line less
    return [
        Row('test scale (long, short)', scale, f'{ade}:23 MultiScaleFlipAug.img_scale',
            lambda o: tuple(o.test_step('Resize').scale)),
        Row('test resize', dict(interpolation='bilinear', backend='cv2', keep_ratio=True),
            f'{ade}:27 Resize(keep_ratio=True); {SEG} mmseg/datasets/pipelines/transforms.py '
            'Resize._resize_img: mmcv.imrescale (bilinear, cv2)',
            lambda o: resize(o.test_step('Resize'))),
        Row('test-time flip', False, f'{ade}:25 flip=False',
            lambda o: flips(o.test_step('RandomFlip'))),
        Row('normalisation mean (RGB)', [123.675, 116.28, 103.53], f'{ade}:4-5 img_norm_cfg.mean',
            lambda o: o.preprocessor.mean.flatten().tolist()),
        Row('normalisation std (RGB)', [58.395, 57.12, 57.375], f'{ade}:4-5 img_norm_cfg.std',
            lambda o: o.preprocessor.std.flatten().tolist()),
        Row('channel order (BGR images)', 'RGB', f'{ade}:5 img_norm_cfg.to_rgb=True',
            lambda o: o.channel_order),
        Row('a 65x35 image at test comes out (no padding)', ((65, 35), []),
            f'{ade}:26-31 (no Pad in the test pipeline)', lambda o: o.padded()),
        Row('training pad values (image, labels)', (0, 255),
            f'{ade}:15 Pad(pad_val=0, seg_pad_val=255)',
            lambda o: (o.preprocessor.pad_val, o.preprocessor.seg_pad_val)),
        Row('label 0 ignored, labels shifted down (reduce_zero_label)', True,
            f'{SEG} mmseg/datasets/ade.py:83 reduce_zero_label=True',
            lambda o: o.test_step('LoadAnnotations').reduce_zero_label),
        Row('classes', 150, f'{ss}:{27 + shift} decode_head.num_classes',
            lambda o: o.model.decode_head.num_classes),
        Row('single-scale test', dict(mode='slide', crop_size=(crop, crop), stride=(stride,) * 2),
            f'{ss}:{33 + shift} test_cfg (crop_size = {ss.rsplit("/", 1)[1]}:13)',
            lambda o: dict(o.model.test_cfg)),
        Row('align_corners (decode, auxiliary, resize to the image)', (False, False, False),
            f'{UPER_BASE}:31,44 align_corners=False',
            lambda o: (o.model.decode_head.align_corners, o.model.auxiliary_head.align_corners,
                       o.model.align_corners)),
        Row('test batch size', 1, f'{SEG} tools/test.py build_dataloader(samples_per_gpu=1)',
            lambda o: o.cfg.test_dataloader.batch_size),
        Row('test precision', 'fp32', f'{ss}:{54 + shift} fp16 = None',
            lambda o: 'fp16' if o.cfg.test_cfg.get('fp16') else 'fp32'),
        Row('--tta scales (long, short)', [(int(scale[0] * r), int(scale[1] * r))
                                           for r in TTA_RATIOS],
            f'{MMSEG_TTA}: img_ratios 0.5 ... 1.75 of {ade}:23; {SEG} mmseg/datasets/pipelines/'
            'test_time_aug.py:72 int(scale * ratio)',
            lambda o: [tuple(s.scale) for s in o.tta_steps('Resize')]),
        Row('--tta resize', [dict(interpolation='bilinear', backend='cv2', keep_ratio=True)] * 6,
            f'{ade}:27 Resize(keep_ratio=True)',
            lambda o: [resize(s) for s in o.tta_steps('Resize')]),
        Row('--tta flips (probability, direction)', [(0., 'horizontal'), (1., 'horizontal')],
            f'{MMSEG_TTA}: flip=True; MultiScaleFlipAug flip_direction=horizontal',
            lambda o: [(s.prob, s.direction) for s in o.tta_steps('RandomFlip')]),
        Row('--tta inference (whole image at every scale)', dict(mode='whole'),
            f'{ms} (no test_cfg) -> {UPER_BASE}:49 test_cfg=dict(mode=whole)',
            lambda o: dict(o.tta_model.module.test_cfg)),
        Row('--tta merge', 'SegTTAModel', f'{SEG} mmseg/models/segmentors/encoder_decoder.py '
            'aug_test: mean of the softmax of every view', lambda o: type(o.tta_model).__name__),
    ]


ROWS = {'maskrcnn': detection_rows, 'cascade': detection_rows, 'upernet': segmentation_rows}


def same(ours, official):
    """Equal as the host uses them: tuples and lists alike, floats to float32 precision."""
    if isinstance(official, (list, tuple)) and isinstance(ours, (list, tuple)):
        return len(ours) == len(official) and all(map(same, ours, official))
    if isinstance(official, dict) and isinstance(ours, dict):
        return ours.keys() == official.keys() and all(same(ours[k], official[k]) for k in ours)
    if isinstance(official, float) and isinstance(ours, (int, float)):
        return math.isclose(ours, official, rel_tol=1e-6)
    return type(ours) is type(official) and ours == official


def test_every_paper_config_is_covered():
    """The 13 released models (and the flagship, the Mask R-CNN T recipe under another path)."""
    assert len(PAPER_CONFIGS) == 14
    assert len({official for _, official in PAPER_CONFIGS.values()}) == 13


@pytest.mark.parametrize('path', one_per_family_fast(sorted(PAPER_CONFIGS)))
def test_test_settings_equal_the_official_config(path):
    family, official = PAPER_CONFIGS[path]
    ours = Ours(path)
    wrong = []
    for row in ROWS[family](official):
        value, expected = row.ours(ours), row.official
        if not same(value, expected):
            wrong.append(f'{row.setting}: ours {value!r}, official {expected!r} ({row.source})')
    assert not wrong, f'{path} differs from {official}:\n' + '\n'.join(wrong)


@pytest.mark.parametrize('tool', ['ours', 'mmseg'])
def test_tta_tests_the_whole_image_through_either_tool(tool):
    """``--tta`` of our tools/test.py and of mmseg's own (which sets ``tta_model.module`` to the
    model and tests ``tta_model``) build the same model: mmseg's SegTTAModel around the config's
    model, whose single-scale test slides windows and whose augmented test takes whole images."""
    cfg = load('configs/upernet/upernet_convnext_t_160k_ade20k.py')
    assert cfg.model.test_cfg.mode == 'slide'
    if tool == 'ours':
        load_tool('test').use_tta(cfg)
    else:  # mmseg 1.2.2 tools/test.py
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    model = build(cfg, 'meta')
    assert type(model).__name__ == 'SegTTAModel'
    assert dict(model.module.test_cfg) == dict(mode='whole')
    assert type(model.module.backbone).__name__ == 'ConvNeXt'


def test_tta_with_test_cfg_takes_a_built_model():
    from convnext_backbone.engine import build_tta_with_test_cfg
    cfg = load('configs/upernet/upernet_convnext_t_160k_ade20k.py')
    module = build(cfg, 'meta')
    tta = build_tta_with_test_cfg(module, dict(type='mmseg.SegTTAModel'), dict(mode='whole'))
    assert tta.module is module and dict(module.test_cfg) == dict(mode='whole')


@pytest.mark.parametrize('tta, test_cfg, module, message', [
    (dict(), dict(mode='whole'), {}, 'tta must be a TTA model config with a type'),
    ('SegTTAModel', dict(mode='whole'), {}, 'tta must be a TTA model config with a type'),
    (dict(type='mmseg.SegTTAModel'), 'whole', {}, 'test_cfg must be a dict'),
    (dict(type='mmseg.SegTTAModel', module={}), {}, {}, 'remove tta.module'),
    (dict(type='mmseg.SegTTAModel'), dict(mode='whole'), 3, 'module must be a model config'),
])
def test_tta_with_test_cfg_refuses_bad_arguments_in_one_line(tta, test_cfg, module, message):
    from convnext_backbone.engine import build_tta_with_test_cfg
    with pytest.raises(TypeError, match=message) as info:
        build_tta_with_test_cfg(module, tta, test_cfg)
    assert '\n' not in str(info.value) and 'TTAWithTestCfg' in str(info.value)
