"""mmcv 2.1.0 was built with its compiled ops, and they run on CPU."""
import torch
from mmcv.ops import RoIAlign, nms


def test_compiled_extension_is_present():
    from mmcv import _ext  # noqa: F401  (absent when the build skipped the C++ ops)


def test_roi_align_forward_matches_hand_computed_and_backward_flows():
    # A linear ramp image: bilinear sampling of a linear function is exact, so every output cell
    # equals the ramp at the cell centre.
    h = w = 8
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing='ij')
    feat = (2 * xs + 3 * ys).float()[None, None].requires_grad_(True)
    rois = torch.tensor([[0., 1., 1., 5., 5.]])  # (batch index, x1, y1, x2, y2)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=False)(feat, rois)
    centres = torch.tensor([2.0, 4.0])  # bin centres along each axis of a 4-wide box from 1
    expected = (2 * centres[None, :] + 3 * centres[:, None])[None, None]
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert feat.grad is not None
    torch.testing.assert_close(feat.grad.sum(), torch.tensor(4.0))  # each bin's weights sum to 1


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.9, 0.7]))


def test_roi_align_cpu_needs_nchw_contiguous_input():
    """mmcv's CPU RoIAlign reads raw NCHW memory: a channels-last tensor (same values) gives
    different, wrong features. This is why our backbone returns contiguous outputs."""
    x = torch.randn(1, 8, 16, 16)
    rois = torch.tensor([[0., 2., 2., 10., 12.]])
    roi_align = RoIAlign((7, 7), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    reference = roi_align(x, rois)
    assert not torch.allclose(roi_align(x.contiguous(memory_format=torch.channels_last), rois),
                              reference)
