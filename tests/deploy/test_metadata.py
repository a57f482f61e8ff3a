"""The export's notes on what the host computes outside the graph: the toy configs' test
pipelines (our checked loader, the resize, annotations, packing) hold nothing the user must
apply besides the resize; a step the graph does not run is named. The metadata's resize rule is
the hosts' own arithmetic and resize call, on every form of mmcv's Resize."""
import numpy as np
import pytest
from deploy_cases import TOY_DET, TOY_SEG

from convnext_backbone.deploy import load_config
from convnext_backbone.deploy.metadata import host_notes, unsupported_steps


@pytest.mark.parametrize('config', [TOY_DET, TOY_SEG], ids=['maskrcnn', 'upernet'])
def test_our_loader_is_loading_not_a_step_to_apply(config):
    cfg = load_config(config)
    assert unsupported_steps(cfg) == []
    assert not any('also runs' in note for note in host_notes(cfg, 'detection'))
    cfg.test_dataloader.dataset.pipeline.insert(2, dict(type='PhotoMetricDistortion'))
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    assert unsupported_steps(cfg) == ['PhotoMetricDistortion']


# (h, w) of the files users have (USER-WORLD.md), both ways round, odd and large ones
USER_SIZES = [(480, 640), (640, 480), (427, 640), (375, 500), (500, 375), (333, 500),
              (612, 612), (150, 227), (97, 131), (33, 47), (800, 1333), (1024, 2048),
              (3000, 4000), (3, 5), (7, 1999)]
# the resize forms mmcv's Resize takes, beyond the shipped configs' scale + keep_ratio
FORMS = [dict(scale=(1333, 800), keep_ratio=True), dict(scale=(2048, 512), keep_ratio=True),
         dict(scale=(128, 213), keep_ratio=True), dict(scale=640, keep_ratio=True),
         dict(scale=(512, 384), keep_ratio=False), dict(scale_factor=0.37, keep_ratio=False),
         dict(scale_factor=(0.5, 1.25), keep_ratio=False),
         dict(scale_factor=0.73, keep_ratio=True)]


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
@pytest.mark.parametrize('form', FORMS, ids=lambda form: '-'.join(f'{k}={v}' for k, v in
                                                                   form.items()))
def test_resize_rule_is_the_hosts_arithmetic(scope, form):
    """The metadata's ``resize`` rule, run as written, gives the size and scale factor the
    host's own Resize transform gives (mmdet's for detectors, mmcv's for mmseg) on images of
    the sizes users have, and its ``resample`` call gives the host's resized pixels."""
    import cv2
    from mmengine.config import Config
    from mmengine.registry import TRANSFORMS, init_default_scope

    from convnext_backbone.deploy.metadata import resize_rule
    init_default_scope(scope)
    step = dict(type='Resize', **form)
    rule = resize_rule(Config(dict(default_scope='mmseg', test_pipeline=[step])))
    transform = TRANSFORMS.build(step)
    rng = np.random.default_rng(0)
    for h, w in USER_SIZES:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if h * w < 10 ** 6 else \
            np.zeros((h, w, 3), np.uint8)
        host = transform(dict(img=image, img_shape=(h, w), ori_shape=(h, w)))
        values = {'h': h, 'w': w}
        exec(rule['rule'], {}, values)
        assert host['img'].shape[:2] == (values['new_h'], values['new_w']), (h, w, rule['rule'])
        assert tuple(host['scale_factor']) == values['scale_factor'], (h, w)
        if h * w < 10 ** 6:  # the pixels too (the call the metadata names)
            resized = eval(rule['resample'], {'cv2': cv2}, {'image': image, **values})
            assert np.array_equal(resized, host['img']), (h, w)
