"""The T configs (Mask R-CNN, Cascade Mask R-CNN, UperNet), every DeepLabV3+ config (dilated
backbones) and a ConvNeXt-V2 config train one step and predict on CPU with their own optimizer
constructor, whose parameter groups carry the paper's layer-decay learning rates and weight
decays.

The models are the configs' full-width models on 64x64 synthetic images; only CPU-sized settings
change: fp32 ``OptimWrapper`` instead of ``AmpOptimWrapper`` (which needs a GPU), SyncBN reverted
to BN (as mmengine's Runner does outside distributed runs), fewer RPN proposals and sampled RoIs.
"""
import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper

from config_helpers import build, load

# For each config: base lr, decay rate, and for named parameters the exponent k of the expected
# lr = base_lr * rate ** k (the official layer-decay rules, as ConvNeXt.get_layer_depth states
# them) and, where given, the expected weight decay.
T_LAYER_WISE = {  # ConvNeXt-T: num_layers 6, 8 layer ids; id = 7 - k
    'backbone.downsample_layers.0.0.weight': 7,  # stem: id 0
    'backbone.stages.0.2.pwconv1.weight': 6,  # stage 0: id 1
    'backbone.downsample_layers.1.1.weight': 5,  # stage 1 and its downsample: id 2
    'backbone.downsample_layers.2.1.weight': 4,  # id 3
    'backbone.stages.2.2.dwconv.weight': 4,  # stage 2, blocks 0-2: id 3
    'backbone.stages.2.8.pwconv2.weight': 2,  # blocks 6-8: id 5
    'backbone.stages.3.0.dwconv.weight': 1,  # last stage: id num_layers = 6
    'backbone.norm3.weight': 0,  # output norms, neck, heads: id 7, full lr
    'neck.lateral_convs.0.conv.weight': 0,
}
T_STAGE_WISE = {
    'backbone.downsample_layers.0.0.weight': 7,  # every downsample layer: id 0
    'backbone.downsample_layers.3.1.weight': 7,
    'backbone.stages.0.0.dwconv.weight': 6,  # stage s: id s + 1
    'backbone.stages.2.8.pwconv1.weight': 4,
    'backbone.stages.3.2.pwconv2.weight': 3,
    'backbone.norm0.weight': 0,
    'decode_head.conv_seg.weight': 0,
    'auxiliary_head.conv_seg.weight': 0,
}
ATTO_LAYER_WISE = {  # ConvNeXt-V2-Atto: depths 2-2-6-2, num_layers 5, 7 layer ids
    'backbone.downsample_layers.0.0.weight': 6,
    'backbone.stages.0.1.pwconv1.weight': 5,
    'backbone.stages.2.5.pwconv1.weight': 2,  # id 3 + 5 // 3 = 4
    'backbone.stages.3.1.grn.gamma': 1,
    'neck.fpn_convs.0.conv.weight': 0,
}
B_STAGE_WISE = {  # ConvNeXt-B: num_layers 12, 14 layer ids
    'backbone.downsample_layers.3.1.weight': 13,
    'backbone.stages.2.26.pwconv1.weight': 10,
    'backbone.stages.3.2.pwconv2.weight': 9,
    'decode_head.aspp_modules.1.depthwise_conv.conv.weight': 0,
    'decode_head.c1_bottleneck.conv.weight': 0,
}
NO_DECAY = ('backbone.stages.0.0.norm.weight', 'backbone.stages.0.0.pwconv1.bias',
            'backbone.downsample_layers.1.0.weight', 'backbone.norm0.bias')

DEEPLAB = 'configs/deeplabv3plus/deeplabv3plus_convnext_'
CASES = {
    'configs/maskrcnn_convnext_t_coco.py': (1e-4, 0.95, T_LAYER_WISE),
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_t_3x_coco.py': (2e-4, 0.7, T_LAYER_WISE),
    'configs/upernet/upernet_convnext_t_160k_ade20k.py': (1e-4, 0.9, T_STAGE_WISE),
    'configs/maskrcnn/maskrcnn_convnextv2_atto_3x_coco.py': (1e-4, 0.95, ATTO_LAYER_WISE),
    f'{DEEPLAB}t_os16_160k_ade20k.py': (1e-4, 0.9, T_STAGE_WISE),
    f'{DEEPLAB}t_os8_160k_ade20k.py': (1e-4, 0.9, T_STAGE_WISE),
    f'{DEEPLAB}b_os16_160k_ade20k.py': (1e-4, 0.9, B_STAGE_WISE),
}
SLOW = ('cascade', 'os8', 'convnext_b_')  # 5-8 s each to build and step
SIZE = 64


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny inputs: with the (shared) 2 cores busy, 2 threads spend most time waiting at barriers
    (seen here: one Mask R-CNN step 12 s with 2 threads, 1 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cpu_sized(cfg):
    """Fewer proposals and sampled RoIs, so the RoI heads run on tens of boxes, not a thousand."""
    train_cfg = cfg.model.train_cfg
    if 'rpn_proposal' in train_cfg:
        train_cfg.rpn_proposal.update(nms_pre=256, max_per_img=64)
        cfg.model.test_cfg.rpn.update(nms_pre=256, max_per_img=64)
        for rcnn in train_cfg.rcnn if isinstance(train_cfg.rcnn, list) else [train_cfg.rcnn]:
            rcnn.sampler.num = 16
    else:  # segmentor: pad to the tiny images rather than to 512x512 crops
        cfg.model.data_preprocessor.size = (SIZE, SIZE)
    return cfg


def synthetic_batch(scope):
    gen = torch.Generator().manual_seed(0)
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        torch.manual_seed(0)
        return demo_mm_inputs(2, [[3, SIZE, SIZE]] * 2, num_items=[2, 3], num_classes=80,
                              with_mask=True)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, SIZE, SIZE), generator=gen))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, SIZE, SIZE), generator=gen, dtype=torch.uint8)
              for _ in samples]
    return dict(inputs=inputs, data_samples=samples)


def cpu_optim_wrapper(model, cfg):
    """The config's optim_wrapper, with fp32 OptimWrapper in place of AmpOptimWrapper."""
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.pop('loss_scale', None)
    optim_cfg.type = 'OptimWrapper'
    return build_optim_wrapper(model, optim_cfg)


@pytest.fixture(scope='module', params=[
    pytest.param(c, marks=pytest.mark.slow) if any(k in c for k in SLOW) else c
    for c in sorted(CASES)])
def trained(request):
    path = request.param
    cfg = cpu_sized(load(path))
    model = revert_sync_batchnorm(build(cfg))
    optim_wrapper = cpu_optim_wrapper(model, cfg)
    data = synthetic_batch(cfg.default_scope)
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    model.train()
    torch.manual_seed(0)  # drop path and the samplers draw random numbers
    losses = model.train_step(data, optim_wrapper)
    model.eval()
    with torch.no_grad():
        predictions = model.test_step(data)
    return path, cfg, model, optim_wrapper, before, losses, predictions


def test_one_training_step_updates_the_whole_model(trained):
    path, cfg, model, _, before, losses, _ = trained
    assert torch.isfinite(losses['loss']), losses
    params = dict(model.named_parameters())
    stale = [n for n, p in params.items() if p.requires_grad and torch.equal(p, before[n])]
    # Stem, deep stage, output norm, neck and heads all moved. A few tensors may legitimately get a
    # zero gradient in one step on 2 tiny images (drop path can drop a block for the whole batch;
    # FPN levels no RoI is assigned to), and AdamW does not move undecayed ones then.
    head = ('decode_head.conv_seg.weight' if cfg.default_scope == 'mmseg'
            else 'neck.fpn_convs.0.conv.bias')
    for name in ('backbone.downsample_layers.0.0.bias', 'backbone.stages.2.0.pwconv1.bias',
                 'backbone.norm3.weight', head):
        assert name not in stale, f'{path}: {name} did not change'
    assert len(stale) <= 0.05 * len(params), f'{path}: unchanged after a step: {stale}'


def test_prediction_on_cpu(trained):
    path, cfg, model, _, _, _, predictions = trained
    assert len(predictions) == 2
    for pred in predictions:
        if cfg.default_scope == 'mmdet':
            inst = pred.pred_instances
            assert inst.bboxes.shape[1] == 4 and len(inst.scores) == len(inst.bboxes)
            assert inst.masks.shape[1:] == (SIZE, SIZE) and len(inst.masks) == len(inst.bboxes)
        else:
            assert pred.pred_sem_seg.data.shape == (1, SIZE, SIZE)
            assert 0 <= int(pred.pred_sem_seg.data.min()) <= int(pred.pred_sem_seg.data.max()) < 150


def test_param_groups_carry_the_papers_layer_decay(trained):
    path, cfg, model, optim_wrapper, _, _, _ = trained
    base_lr, rate, exponents = CASES[path]
    assert cfg.optim_wrapper.optimizer.lr == base_lr
    assert cfg.optim_wrapper.paramwise_cfg.decay_rate == rate
    group_of = {id(p): g for g in optim_wrapper.optimizer.param_groups for p in g['params']}
    params = dict(model.named_parameters())
    trainable = [p for p in params.values() if p.requires_grad]
    assert len(group_of) == len(trainable), 'every trainable parameter is in exactly one group'
    for name, k in exponents.items():
        group = group_of[id(params[name])]
        assert group['lr'] == pytest.approx(base_lr * rate ** k, rel=1e-9), (name, group['lr'])
    for name in NO_DECAY:
        assert group_of[id(params[name])]['weight_decay'] == 0, name
    for name, param in params.items():
        wd = group_of[id(param)]['weight_decay']
        if param.ndim <= 1 or name.endswith('.bias'):  # norms, biases, layer scale, GRN
            assert wd == 0, name
        else:
            assert wd == 0.05, name
