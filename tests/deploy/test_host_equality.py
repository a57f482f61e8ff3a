"""The exported graphs in plain onnxruntime, fed per the contract, against the hosts' own
inference APIs (mmdet's ``inference_detector``, mmseg's ``inference_model``) on image files of
everyday sizes that need padding after the resize: trained toy models, the toy Cascade, the
flagship-size Mask R-CNN, and the docs' plain-onnxruntime example run as written (the files
users have, EXIF JPEGs, gray, RGBA and 16-bit PNGs, large photos: test_user_images.py)."""
import re

import numpy as np
import pytest
from deploy_cases import (
    EXPORT_SHAPE,
    TOY_CASCADE,
    TOY_DET,
    TOY_SEG,
    assert_equals_host,
)

from conftest import REPO

pytest.importorskip('onnxruntime')
cv2 = pytest.importorskip('cv2')

from convnext_backbone.deploy import build_model, export, load_config  # noqa: E402
from convnext_backbone.deploy.verify import SIZES, verify, write_images  # noqa: E402

FLAGSHIP = str(REPO / 'configs/maskrcnn_convnext_t_coco.py')


@pytest.fixture(scope='module')
def trained_det(trained_det_run):
    """The toy Mask R-CNN after 2 training iterations (4 images, batch 2; conftest)."""
    return trained_det_run / 'epoch_1.pth'


@pytest.fixture(scope='module')
def trained_seg(trained_seg_run):
    """The toy UperNet after 2 training iterations (batch 2; conftest)."""
    return trained_seg_run / 'iter_2.pth'


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    """JPEG files of 375x500, 500x375, 150x227 and 33x47 (H x W)."""
    return write_images(str(tmp_path_factory.mktemp('images')), SIZES)


@pytest.fixture(scope='module')
def toy_det_onnx(tmp_path_factory):
    return export(TOY_DET, None, str(tmp_path_factory.mktemp('det') / 'det.onnx'),
                  shape=EXPORT_SHAPE)


@pytest.mark.slow  # trains briefly through tools/train.py (subprocess)
@pytest.mark.parametrize('config, weights', [(TOY_DET, 'trained_det'), (TOY_SEG, 'trained_seg')],
                         ids=['maskrcnn', 'upernet'])
def test_trained_toy_models(request, tmp_path, image_files, config, weights):
    checkpoint = str(request.getfixturevalue(weights))
    out = export(config, checkpoint, str(tmp_path / 'model.onnx'), shape=EXPORT_SHAPE)
    assert_equals_host(verify(config, checkpoint, out, image_paths=image_files))


@pytest.mark.slow  # another whole-model export and 8 detector runs (~30 s)
def test_cascade_toy(tmp_path, image_files):
    """Three box stages (the last class-agnostic), class scores and masks averaged."""
    out = export(TOY_CASCADE, None, str(tmp_path / 'cascade.onnx'), shape=EXPORT_SHAPE)
    assert_equals_host(verify(TOY_CASCADE, None, out, image_paths=image_files))


@pytest.mark.slow  # a full-width Mask R-CNN ConvNeXt-T (random weights): ~1 minute
def test_flagship_mask_rcnn(tmp_path, image_files):
    """The flagship config, at a cheaper test resize (333x200 instead of 1333x800: the same
    code, fewer pixels) and a lower score threshold (random weights score low). Random mask
    heads give probabilities near 0.5, where float rounding of the mask logits flips single
    pixels (seen: 2 of a 45-pixel mask, IoU 0.956, while the paste itself is exact, see
    test_paste_equals_mmdets_paste): the check counts them as threshold ties (49 pixels over
    the four files) and holds the other pixels to the usual IoU >= 0.99."""
    options = {'test_dataloader.dataset.pipeline.1.scale': (333, 200),
               'model.test_cfg.rcnn.score_thr': 0.02}
    out = export(FLAGSHIP, None, str(tmp_path / 'flagship.onnx'), shape=(128, 128),
                 cfg_options=options)
    assert_equals_host(verify(FLAGSHIP, None, out, cfg_options=options, image_paths=image_files,
                              ))


@pytest.mark.parametrize('shape', [(375, 500), (33, 47)])
def test_paste_equals_mmdets_paste(shape):
    """The numpy paste against mmdet's own ``_do_paste_mask`` on the same probabilities: boxes
    of every kind (inside, across the border, thin, sub-pixel), then mmdet's threshold."""
    import torch
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

    from convnext_backbone.deploy.paste import paste_masks
    height, width = shape
    rng = np.random.default_rng(0)
    corners = np.clip(rng.uniform(-0.2, 1.2, (40, 2, 2)), 0, 1) * [width, height]  # clipped
    boxes = np.concatenate([corners.min(1), corners.max(1)], 1).astype(np.float32)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.1)
    boxes[:5, 2:] = boxes[:5, :2] + rng.uniform(0.1, 3, (5, 2))  # thin and sub-pixel boxes
    masks = rng.uniform(0, 1, (40, 28, 28)).astype(np.float32)
    ours = paste_masks(masks, boxes, height, width, threshold=-1)
    for mask, box, mine in zip(masks, boxes, ours):
        pasted, where = _do_paste_mask(torch.from_numpy(mask)[None, None],
                                       torch.from_numpy(box)[None], height, width)
        theirs = np.zeros((height, width), np.float32)
        theirs[where] = pasted[0].numpy()
        assert np.abs(mine - theirs).max() < 1e-5
        assert ((mine >= 0.5) != (theirs >= 0.5)).sum() <= 1  # at most a tie at the threshold


def doc_snippets():
    """The python blocks of docs/deployment.md marked ``<!-- tested: ... -->``, in order."""
    text = (REPO / 'docs' / 'deployment.md').read_text()
    return re.findall(r'<!-- tested: [^>]*-->\s*```python\n(.*?)```', text, re.S)


def test_docs_plain_onnxruntime_example(toy_det_onnx, image_files, tmp_path, monkeypatch):
    """The docs' example (numpy, cv2, onnxruntime; no project import) run as written on an
    image file gives mmdet's own boxes, labels, scores and masks."""
    import shutil

    import torch
    from mmdet.apis import inference_detector
    snippets = doc_snippets()
    assert len(snippets) == 2 and all('convnext_backbone' not in s for s in snippets)
    shutil.copy(toy_det_onnx, tmp_path / 'maskrcnn.onnx')
    model = build_model(load_config(TOY_DET))
    model.cfg = load_config(TOY_DET)
    monkeypatch.chdir(tmp_path)
    for source in image_files[:2]:
        shutil.copy(source, tmp_path / 'demo.jpg')
        scope = {}
        for snippet in snippets:
            exec(compile(snippet, 'docs/deployment.md', 'exec'), scope)
        host = inference_detector(model, str(tmp_path / 'demo.jpg')).pred_instances
        assert len(scope['boxes']) == len(host.scores) > 0
        assert np.array_equal(scope['labels'], host.labels.numpy())
        assert np.abs(scope['boxes'] - host.bboxes.numpy()).max() < 0.05
        assert np.abs(scope['scores'] - host.scores.numpy()).max() < 1e-4
        ours = torch.from_numpy(np.stack(scope['binary']))
        iou = (ours & host.masks).sum((1, 2)) / (ours | host.masks).sum((1, 2)).clamp(min=1)
        assert iou.min() >= 0.99, iou


def test_detections_are_matched_across_near_ties():
    """Detections whose scores tie within float noise may come in either order: matched by
    label and box, not by rank; a box that moved is still a difference."""
    import torch
    from mmengine.structures import InstanceData

    from convnext_backbone.deploy.verify import compare_detections
    boxes = np.array([[10, 10, 50, 50], [60, 5, 90, 40], [0, 0, 20, 30]], np.float32)
    out = dict(boxes=boxes, scores=np.array([0.9, 0.50001, 0.5], np.float32),
               labels=np.array([1, 2, 3]), masks=np.full((3, 28, 28), 0.9, np.float32))
    order = [0, 2, 1]  # the two near-tied detections swapped
    host = InstanceData(bboxes=torch.from_numpy(boxes[order]),
                        scores=torch.tensor([0.9, 0.50000, 0.50001]),
                        labels=torch.tensor([1, 3, 2]), masks=torch.zeros(3, 100, 100,
                                                                          dtype=torch.bool))
    for i, j in enumerate(order):
        x0, y0, x1, y1 = boxes[j].astype(int)
        host.masks[i, y0:y1, x0:x1] = True
    report = compare_detections(out, host, (1.0, 1.0), (100, 100))
    assert report['ok'] and report['unmatched'] == 0 and report['box_diff'] == 0, report
    host.bboxes[1, 2] += 1.0  # a box one pixel off
    report = compare_detections(out, host, (1.0, 1.0), (100, 100))
    assert not report['ok'] and report['box_diff'] == 1.0, report
