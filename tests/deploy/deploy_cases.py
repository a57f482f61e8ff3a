"""What the deployment tests share: the toy configs, and the acceptance checks of a comparison
with the host (``convnext_backbone.deploy.verify``)."""
from conftest import REPO

TOY_DET_REL = 'configs/toy/maskrcnn_convnext_toy_coco.py'
TOY_SEG_REL = 'configs/toy/upernet_convnext_toy_ade20k.py'
TOY_DET, TOY_SEG = str(REPO / TOY_DET_REL), str(REPO / TOY_SEG_REL)
TOY_CASCADE = str(REPO / 'tests/deploy/cascade_toy.py')
TOY_CLASSES = ['rectangle', 'ellipse', 'triangle', 'star']
# ConvNeXt V2 (GRN) variant of the toy backbones
V2 = {'model.backbone.arch': dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256], grn=True),
      'model.backbone.layer_scale_init_value': 0}
EXPORT_SHAPE = (64, 64)  # the traced size; the checks run other sizes
QUERY_HEADS = ('/mask2former/', '/dino/')  # no graph for them yet: the tool says so


def assert_equals_host(report, detections=True):
    """Every image of a ``verify`` report within the acceptance limits; detections compared on
    a non-empty set, and on inputs that the graph had to pad."""
    print(f'\n[deploy] {report}')  # the figures in docs/deployment.md (pytest -s)
    assert report['ok'], report
    for name, result in report['images'].items():
        assert result['ok'], (name, result)
        if report['task'] == 'detection':
            assert result['count_graph'] == result['count_host'], (name, result)
            if detections:
                assert result['count_host'] > 0, (name, result)  # something to compare
    if report['task'] == 'detection':
        padded = [r['input'] for r in report['images'].values()
                  if r['input'][0] % 32 or r['input'][1] % 32]
        assert len(padded) >= min(len(report['images']), 3), report  # padding exercised


def worst(report, key):
    values = [r[key] for r in report['images'].values()]
    return min(values) if key in ('mask_iou_min', 'argmax_agreement') else max(values)
