"""The mask check of ``verify``: pixels that the graph and mmdet binarise differently only
because the probability sits on ``mask_thr_binary`` (float rounding; untrained mask heads are
near 0.5 everywhere) are reported as ties and do not fail it; a mask computed wrongly does.

The Cascade's stage averaging is the mask computation most easily got wrong (mmdet averages the
three mask heads' sigmoid probabilities for the final boxes); the toy Cascade's export wrapper,
run eagerly, is compared with ``inference_detector`` as it stands and with the averaging broken.
"""
import numpy as np
import pytest
import torch
from deploy_cases import TOY_CASCADE
from mmengine.structures import InstanceData

from convnext_backbone.deploy import build_model, load_config
from convnext_backbone.deploy.driver import wrap
from convnext_backbone.deploy.verify import (
    compare_detections,
    graph_input,
    host_inference,
    write_images,
)

pytest.importorskip('cv2')


def _one_detection(probability: float):
    """A graph detection whose RoI mask is ``probability`` everywhere, and mmdet's result for
    it with the first pixel of the pasted mask left out."""
    from convnext_backbone.deploy.paste import paste_masks
    box = np.array([[10.2, 10.1, 13.4, 12.6]], np.float32)
    out = dict(boxes=box, scores=np.array([0.9], np.float32), labels=np.array([1]),
               masks=np.full((1, 28, 28), probability, np.float32))
    host_mask = paste_masks(out['masks'], box, 40, 40, threshold=0.5)
    ys, xs = np.nonzero(host_mask[0])
    assert len(ys) >= 4  # a mask of a few pixels, as in a small image
    host_mask[0, ys[0], xs[0]] = False
    host = InstanceData(bboxes=torch.from_numpy(box), scores=torch.tensor([0.9]),
                        labels=torch.tensor([1]), masks=torch.from_numpy(host_mask))
    return out, host, len(ys)


def test_threshold_tie_is_reported_not_failed():
    out, host, pixels = _one_detection(0.50003)  # 3e-5 above the threshold: a tie
    report = compare_detections(out, host, (1.0, 1.0), (40, 40))
    assert report['mask_ties'] == 1 and report['ok'], report
    assert report['mask_iou_min'] == pytest.approx((pixels - 1) / pixels)
    assert report['mask_iou_min_decided'] == 1.0


def test_a_decided_pixel_is_a_difference():
    out, host, pixels = _one_detection(0.6)  # far from the threshold: a real difference
    report = compare_detections(out, host, (1.0, 1.0), (40, 40))
    assert report['mask_ties'] == 0 and not report['ok'], report
    assert report['mask_iou_min_decided'] == pytest.approx((pixels - 1) / pixels)


@pytest.fixture(scope='module')
def cascade():
    cfg = load_config(TOY_CASCADE)
    model = build_model(cfg)
    model.cfg = cfg
    return model


def _detections(wrapper, images) -> dict:
    with torch.no_grad():
        boxes, scores, labels, masks = wrapper(images)
    return dict(boxes=boxes.numpy(), scores=scores.numpy(), labels=labels.numpy(),
                masks=masks.numpy())


@pytest.mark.slow  # the toy Cascade exported and run (about 8 s)
def test_cascade_mask_averaging_is_checked(cascade, tmp_path):
    """On an everyday image file, the exported averaging of the three mask heads passes the
    check against ``inference_detector``; the last or the first head alone (a broken averaging)
    fails it with masks far apart, not with ties."""
    path = write_images(str(tmp_path), [(150, 227)])[0]
    data = graph_input(cascade.cfg, path)
    host = host_inference(cascade, path)
    wrapper = wrap(cascade, 'detection')
    heads = list(wrapper.mask_heads)
    reports = {}
    for name, chosen in (('all', heads), ('last only', heads[-1:]), ('first only', heads[:1])):
        wrapper.mask_heads = torch.nn.ModuleList(chosen)
        reports[name] = compare_detections(_detections(wrapper, data['images']), host,
                                           data['scale_factor'], data['ori_shape'])
    print(f'\n[mask averaging] {reports}')
    assert all(r['count_host'] > 0 and r['box_diff'] <= 0.05 for r in reports.values()), reports
    assert reports['all']['ok'], reports
    for name in ('last only', 'first only'):
        assert not reports[name]['ok'], reports
        assert reports[name]['mask_iou_min_decided'] < 0.9, reports
