"""tools/get_flops.py counts parameters and FLOPs with mmengine's analysis tools (tiny inputs here;
docs/model_zoo.md records the paper-size numbers)."""
import re

import pytest

from config_helpers import load
from conftest import REPO, load_tool, run_tool

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)


def test_cli_prints_params_and_flops_of_a_two_stage_detector():
    proc = run_tool(REPO / 'tools' / 'get_flops.py',
                    'configs/maskrcnn/maskrcnn_convnextv2_atto_3x_coco.py',
                    '--shape', '64', '96', '--mode', 'legacy', '--proposals', '50')
    out = proc.stdout
    assert 'input:   1x3x64x96' in out
    assert 'params:  23,446,824 (23.447M)' in out  # the count test_config_models checks, too
    flops = int(re.search(r'FLOPs:\s+([\d,]+)', out).group(1).replace(',', ''))
    assert 1e9 < flops < 1e11
    assert '50 fixed proposals per box stage' in out
    assert 'RoIAlign' in out  # listed as not counted, not silently dropped


def test_segmentor_counts_backbone_and_decode_head_but_not_the_auxiliary_head():
    get_flops = load_tool('get_flops')
    cfg = load('configs/upernet/upernet_convnextv2_atto_160k_ade20k.py')
    result = get_flops.count(cfg, (64, 64))
    parts = result['parts']
    assert result['params'] == sum(p for p, _ in parts.values())
    assert parts['backbone'][1] > 0 and parts['decode_head'][1] > 0
    assert parts['auxiliary_head'] == (parts['auxiliary_head'][0], 0)  # not run at test time
    assert result['flops'] >= sum(f for _, f in parts.values())



def test_dilated_backbone_costs_more_flops_with_the_same_parameters():
    """The toy DeepLabV3+ at output stride 8 and 16: same parameters, more FLOPs in the backbone
    (stage 2 runs at 4x, stage 3 at 4x its stride-16 resolution) and in the head (ASPP at 4x)."""
    get_flops = load_tool('get_flops')
    counts = {}
    for output_stride in (16, 8):
        cfg = load('configs/toy/deeplabv3plus_convnext_toy_ade20k.py')
        cfg.model.backbone.output_stride = output_stride
        counts[output_stride] = get_flops.count(cfg, (64, 96))['parts']
    for part in ('backbone', 'decode_head'):
        assert counts[8][part][0] == counts[16][part][0]  # parameters
        assert counts[8][part][1] > 2 * counts[16][part][1]  # FLOPs


@pytest.mark.parametrize('path, shape', [
    ('configs/mask2former/mask2former_convnext_t_160k_ade20k.py', (64, 96)),
    ('configs/toy/mask2former_convnext_toy_coco.py', (64, 96)),
    ('configs/toy/dino_convnext_toy_coco.py', (200, 232)),  # DINO needs >= its 20 queries' tokens
])
def test_transformer_heads_count_every_part(path, shape):
    """Mask2Former (mmseg's head cannot run in mmseg's tensor mode: the tool calls it with the
    data samples) and DINO: every part holding parameters is counted, and the deformable
    attention's sampling (grid_sampler, mmcv's CPU path) with it."""
    from config_helpers import build
    get_flops = load_tool('get_flops')
    cfg = load(path)
    result = get_flops.count(cfg, shape)
    fresh = build(load(path), device='meta')  # building DINO changes its config in place
    assert result['params'] == sum(p.numel() for p in fresh.parameters())
    parts = result['parts']
    head = 'decode_head' if 'decode_head' in parts else (
        'panoptic_head' if 'panoptic_head' in parts else 'encoder')
    assert parts['backbone'][1] > 0 and parts[head][1] > 0
    assert result['flops'] >= parts['backbone'][1] + parts[head][1]
    assert 'aten::grid_sampler' not in result['not_counted']
