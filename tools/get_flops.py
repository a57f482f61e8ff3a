"""Parameters and FLOPs of a config's model, counted with mmengine's analysis tools.

    python tools/get_flops.py configs/maskrcnn_convnext_t_coco.py --shape 800 1280
    python tools/get_flops.py configs/upernet/upernet_convnext_t_160k_ade20k.py --shape 512 2048

The model is built from the config as mmdet's/mmseg's tools would build it, without loading
pretrained weights (nothing is downloaded), SyncBN reverted to BN, in eval mode. It then runs
once on a random (1, 3, H, W) image (H x W is what the input of the network is: no resizing or
padding happens here) and ``mmengine.analysis.FlopAnalyzer`` counts the FLOPs of that run.

What runs (``--mode``):

* ``tensor`` (default): the model's own forward in mmengine's ``'tensor'`` mode, as mmdet's and
  mmseg's ``tools/analysis_tools/get_flops.py`` do: backbone, neck and heads without
  post-processing. For a segmentor: the decode head only (no auxiliary head); a decode head whose
  forward takes the data samples (mmseg's Mask2Former, which mmseg's tensor mode cannot run) is
  called with them after the backbone, the same computation. For a two-stage
  detector the RoI heads run on the RPN's own proposals (at most ``rpn.max_per_img``, 1000 in the
  configs; how many survive NMS depends on the random weights) and mmdet 3's Cascade RoI head
  runs every mask stage on every proposal.
* ``legacy``: what the ConvNeXt paper's numbers count (mmdet 2.x ``forward_dummy``): the RPN
  head's convolutions, then ``--proposals`` fixed boxes (1000) through every box stage and the
  first 100 of them through every mask stage. Same as ``tensor`` for segmentors.

Counting conventions (fvcore's, used by mmengine): one multiply-add counts as ONE FLOP (so the
numbers are multiply-accumulates, the convention of the ConvNeXt paper's tables too); convs,
linear layers, matmuls, norms, upsampling and pooling are counted; element-wise operations
(GELU, ReLU, additions, GRN's scaling) and ops without a handle (RoIAlign, NMS) count zero and
are listed under "not counted". Deformable attention (Mask2Former's pixel decoder, DINO) runs
mmcv's pure-PyTorch path on CPU: its linear layers count as usual and its bilinear sampling
(``grid_sampler``) as 4 per sampled value (mmengine's rule), its softmax weighting as zero.
"""
import argparse
import inspect

import torch
from torch import nn


def parse_args(argv=None):
    from convnext_backbone.cli import arguments
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    arguments.add_config(parser)
    parser.add_argument('--shape', type=int, nargs='+', default=[800, 1280],
                        metavar='N', help='input H W (or one number for a square); '
                        'default 800 1280')
    parser.add_argument('--mode', choices=('tensor', 'legacy'), default='tensor',
                        help="'tensor': the model's own tensor-mode forward (default); "
                        "'legacy': the paper's counting (mmdet 2.x forward_dummy)")
    parser.add_argument('--proposals', type=int, default=1000,
                        help='fixed proposals for two-stage detectors in legacy mode')
    args = parser.parse_args(argv)
    if len(args.shape) == 1:
        args.shape = args.shape * 2
    if len(args.shape) != 2 or min(args.shape) < 32:
        parser.error(f'--shape takes H W (each >= 32), got {args.shape}')
    return args


def build_model(cfg):
    """Build ``cfg.model`` in the config's own scope, without pretrained weights, on CPU."""
    import importlib

    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    backbone = cfg.model.get('backbone')
    if isinstance(backbone, dict) and backbone.get('init_cfg') is not None:
        backbone['init_cfg'] = None  # counting needs no weights (and must not download)
    if 'pretrained' in cfg.model:
        cfg.model.pretrained = None
    scope = cfg.get('default_scope', 'mmengine')
    init_default_scope(scope)
    from convnext_backbone.engine.model_fit import check_model_fits
    registry = importlib.import_module(f'{scope}.registry').MODELS
    model = registry.build(cfg.model)
    check_model_fits(model)  # one line instead of a shape error deep in the counted forward
    return revert_sync_batchnorm(model).eval()


def _det_sample(h, w):
    from mmdet.structures import DetDataSample
    return DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                       batch_input_shape=(h, w), scale_factor=(1., 1.)))


class TensorForward(nn.Module):
    """The model's own ``forward(inputs, data_samples, mode='tensor')``."""

    def __init__(self, model, data_samples):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, x):
        return self.model(x, self.data_samples, mode='tensor')


class QueryHeadSegForward(nn.Module):
    """Backbone (and neck), then a decode head that takes the data samples (Mask2Former)."""

    def __init__(self, model, data_samples):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, x):
        return self.model.decode_head(self.model.extract_feat(x), self.data_samples)


class LegacyTwoStageForward(nn.Module):
    """mmdet 2.x ``forward_dummy`` of two-stage detectors, the counting of the ConvNeXt paper.

    Backbone, neck and RPN head convolutions; then ``num_proposals`` fixed boxes through each box
    stage (all stages see the same boxes) and the first 100 through each mask stage.
    """

    def __init__(self, model, shape, num_proposals):
        super().__init__()
        self.model = model
        h, w = shape
        gen = torch.Generator().manual_seed(0)
        xy = torch.rand(num_proposals, 2, generator=gen) * torch.tensor([w * .75, h * .75])
        wh = torch.rand(num_proposals, 2, generator=gen) * torch.tensor([w * .25, h * .25]) + 8
        self.register_buffer('rois', torch.cat(
            [torch.zeros(num_proposals, 1), xy, xy + wh], dim=1), persistent=False)

    def forward(self, x):
        model, roi_head = self.model, self.model.roi_head
        feats = model.extract_feat(x)
        outs = [model.rpn_head(feats)]
        stages = range(roi_head.num_stages) if hasattr(roi_head, 'num_stages') else [None]
        args = (lambda s: (s,)) if hasattr(roi_head, 'num_stages') else (lambda s: ())
        if roi_head.with_bbox:
            for s in stages:
                res = roi_head._bbox_forward(*args(s), feats, self.rois)
                outs.append((res['cls_score'], res['bbox_pred']))
        if roi_head.with_mask:
            for s in stages:
                outs.append(roi_head._mask_forward(*args(s), feats, self.rois[:100])['mask_preds'])
        return outs


def runnable(model, shape, mode, num_proposals):
    """The module whose forward is counted, and a note saying what it runs."""
    h, w = shape
    scope = type(model).__module__.split('.')[0]
    if scope == 'mmdet':
        two_stage = getattr(model, 'with_rpn', False) and getattr(model, 'with_roi_head', False)
        if mode == 'legacy' and two_stage:
            return (LegacyTwoStageForward(model, shape, num_proposals),
                    f'legacy: RPN convs + {num_proposals} fixed proposals per box stage, '
                    f'{min(100, num_proposals)} per mask stage (mmdet 2.x forward_dummy)')
        return TensorForward(model, [_det_sample(h, w)]), "the model's tensor-mode forward"
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w), batch_input_shape=(h, w)))
        head = getattr(model, 'decode_head', None)
        if head is not None and 'batch_data_samples' in inspect.signature(head.forward).parameters:
            return QueryHeadSegForward(model, [sample]), \
                'backbone + decode head, called with the data samples (Mask2Former)'
        return TensorForward(model, [sample]), \
            "the model's tensor-mode forward (backbone + neck + decode head)"
    return TensorForward(model, None), "the model's tensor-mode forward"


def count(cfg, shape, mode='tensor', num_proposals=1000):
    """Return a dict: params, flops (multiply-adds), per-part breakdowns, uncounted ops."""
    from mmengine.analysis import FlopAnalyzer, parameter_count

    model = build_model(cfg)
    module, note = runnable(model, shape, mode, num_proposals)
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        analyzer = FlopAnalyzer(module, (x,))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        total = analyzer.total()
        by_module = analyzer.by_module()
        unsupported = analyzer.unsupported_ops()
    params = parameter_count(model)
    parts = [name for name, _ in model.named_children() if params.get(name, 0) or
             by_module.get(f'model.{name}', 0)]
    return dict(
        params=params[''], flops=total, note=note, shape=tuple(shape),
        parts={p: (params.get(p, 0), by_module.get(f'model.{p}', 0)) for p in parts},
        not_counted=dict(sorted(unsupported.items())))


def _fmt(n, unit=''):
    for scale, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(n) >= scale:
            return f'{n / scale:.3f}{suffix}{unit}'
    return f'{n}{unit}'


def main(argv=None):
    args = parse_args(argv)
    import convnext_backbone  # noqa: F401  (registers the backbone before the config is read)
    from convnext_backbone.cli import config

    cfg = config.load_config(args.config, args.cfg_options)
    result = count(cfg, args.shape, args.mode, args.proposals)
    h, w = result['shape']
    print(f'config:  {args.config}')
    print(f'input:   1x3x{h}x{w} (H x W = {h} x {w})')
    print(f'counted: {result["note"]}')
    print(f'params:  {result["params"]:,} ({_fmt(result["params"])})')
    print(f'FLOPs:   {result["flops"]:,} ({_fmt(result["flops"])}; one multiply-add = one FLOP)')
    print('by part:  ' + ', '.join(f'{name} {_fmt(p)} params / {_fmt(f)} FLOPs'
                                    for name, (p, f) in result['parts'].items()))
    if result['not_counted']:
        print('not counted (no FLOP handle): ' +
              ', '.join(f'{op} x{n}' for op, n in result['not_counted'].items()))
    return result


if __name__ == '__main__':
    from convnext_backbone.cli import run_tool
    run_tool(main)
