"""Every shipped config loads, builds its model, wires the backbone's outputs into the neck/heads,
and has the published parameter count (models built on the meta device: no memory, no weights)."""
import pytest
import torch

from config_helpers import CONFIG_DIR, REPO, build, load, read, shipped_configs
from conftest import one_per_family_fast

CONFIGS = shipped_configs()
CONFIG_PARAMS = one_per_family_fast(CONFIGS)  # the others marked slow

# Published parameter counts (ConvNeXt paper / official READMEs), rounded there to 1M. We compare
# with a tolerance of max(0.5%, 0.5M): 0.5% of the rounded value, but never below the rounding.
PUBLISHED_PARAMS_M = {
    'configs/maskrcnn_convnext_t_coco.py': 48,
    'configs/maskrcnn/maskrcnn_convnext_t_1x_coco.py': 48,
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_t_3x_coco.py': 86,
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_s_3x_coco.py': 108,
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_b_3x_coco.py': 146,
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_b_in22k_3x_coco.py': 146,
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_l_in22k_3x_coco.py': 255,
    'configs/cascade_maskrcnn/cascade_maskrcnn_convnext_xl_in22k_3x_coco.py': 407,
    'configs/upernet/upernet_convnext_t_160k_ade20k.py': 60,
    'configs/upernet/upernet_convnext_s_160k_ade20k.py': 82,
    'configs/upernet/upernet_convnext_b_160k_ade20k.py': 122,
    'configs/upernet/upernet_convnext_b_in22k_640_160k_ade20k.py': 122,
    'configs/upernet/upernet_convnext_l_in22k_640_160k_ade20k.py': 235,
    'configs/upernet/upernet_convnext_xl_in22k_640_160k_ade20k.py': 391,
}
EXACT_PARAMS = {  # seen with mmdet and the official code (docs/model_zoo.md)
    'configs/maskrcnn_convnext_t_coco.py': 48_095_376}
# Families on a host's own recipe with the backbone swapped (the ConvNeXt paper has none):
# folder -> the host's weight decay. They train in fp32 as the hosts do.
HOST_RECIPES = {'mask2former': 0.05, 'dino': 1e-4}


def host_recipe(path):
    """The weight decay of the host recipe ``path`` follows, or None for the paper's recipes."""
    return next((wd for family, wd in HOST_RECIPES.items() if f'/{family}/' in path), None)


def test_the_issue_configs_are_all_there():
    names = {c.rsplit('/', 1)[-1] for c in CONFIGS}
    expected = {'maskrcnn_convnext_t_coco.py', 'maskrcnn_convnext_t_3x_coco.py',
                'maskrcnn_convnext_t_1x_coco.py'}
    expected |= {f'cascade_maskrcnn_convnext_{s}_3x_coco.py' for s in 'tsb'}
    expected |= {f'cascade_maskrcnn_convnext_{s}_in22k_3x_coco.py' for s in ('b', 'l', 'xl')}
    expected |= {f'upernet_convnext_{s}_160k_ade20k.py' for s in 'tsb'}
    expected |= {f'upernet_convnext_{s}_in22k_640_160k_ade20k.py' for s in ('b', 'l', 'xl')}
    for size in ('atto', 'femto', 'pico', 'nano', 'tiny', 'base'):
        expected |= {f'maskrcnn_convnextv2_{size}_3x_coco.py',
                     f'upernet_convnextv2_{size}_160k_ade20k.py'}
    expected |= {f'deeplabv3plus_convnext_{s}_160k_ade20k.py'
                 for s in ('t_os16', 't_os8', 'b_os16')}
    assert expected <= names, sorted(expected - names)
    assert set(PUBLISHED_PARAMS_M) <= set(CONFIGS)


@pytest.fixture(scope='module')
def built():
    """path -> (cfg, model on the meta device), built once per config."""
    cache = {}

    def get(path):
        if path not in cache:
            cfg = load(path)
            cache[path] = cfg, build(cfg, device='meta')
        return cache[path]
    return get


@pytest.mark.parametrize('path', CONFIG_PARAMS)
def test_config_follows_the_conventions(path):
    text = (REPO / path).read_text()
    assert text.startswith('"""'), 'each config starts with its docstring'
    doc = text.split('"""')[1]
    assert 'Schedule:' in doc and 'Total batch size: 16' in doc, \
        'the docstring states the schedule and the total batch size'
    cfg = read(path)
    host_wd = host_recipe(path)
    # mmseg's Mask2Former also imports mmdet.models, as the host config does (its head is mmdet's)
    assert cfg.custom_imports == dict(
        imports=['mmdet.models', 'convnext_backbone'] if host_wd and cfg.default_scope == 'mmseg'
        else ['convnext_backbone'], allow_failed_imports=False)
    assert cfg.default_scope in ('mmdet', 'mmseg')
    assert cfg.model.backbone.type == 'convnext_backbone.ConvNeXt'
    assert cfg.optim_wrapper.constructor == 'convnext_backbone.LayerDecayOptimWrapperConstructor'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.weight_decay == (host_wd or 0.05)
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
    if cfg.default_scope == 'mmdet':  # mmdet's --auto-scale-lr scales from this batch size
        assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    amp = cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert amp == (cfg.model.backbone.arch not in ('v1-large', 'v1-xlarge')
                   and host_wd is None), \
        'fp16 as the official configs, which train L and XL in fp32; fp32 as the hosts'
    if amp:
        assert cfg.optim_wrapper.loss_scale == 'dynamic'


@pytest.mark.parametrize('path', CONFIG_PARAMS)
def test_pretrained_weights_are_the_official_files(path):
    backbone = read(path).model.backbone
    assert backbone.init_cfg.type == 'Pretrained'
    url = backbone.init_cfg.checkpoint
    version, size = backbone.arch.split('-')
    if version == 'v2':
        assert url == ('https://dl.fbaipublicfiles.com/convnext/convnextv2/im1k/'
                       f'convnextv2_{size}_1k_224_ema.pt')
    else:
        data = '22k' if 'in22k' in path else '1k'
        assert url == f'https://dl.fbaipublicfiles.com/convnext/convnext_{size}_{data}_224.pth'


@pytest.mark.parametrize('path', CONFIG_PARAMS)
def test_model_builds_and_heads_take_the_backbone_outputs(path, built):
    cfg, model = built(path)
    backbone = model.backbone
    assert type(backbone).__name__ == 'ConvNeXt' and type(backbone).__module__.startswith(
        'convnext_backbone')
    assert backbone.arch_spec.name == cfg.model.backbone.arch
    out = tuple(backbone.out_channels)
    if hasattr(model, 'panoptic_head'):  # mmdet's Mask2Former: its pixel decoder takes them
        assert tuple(c.in_channels for c in model.panoptic_head.pixel_decoder.input_convs) + \
            (model.panoptic_head.pixel_decoder.lateral_convs[0].in_channels,) == out[::-1]
    elif cfg.default_scope == 'mmdet':
        neck = model.neck  # FPN states its in_channels; DINO's ChannelMapper has a conv per input
        assert tuple(neck.in_channels if hasattr(neck, 'in_channels') else
                     [c.conv.in_channels for c in neck.convs]) == out
    elif not hasattr(model, 'auxiliary_head'):  # mmseg's Mask2Former (no auxiliary head)
        decoder = model.decode_head.pixel_decoder
        assert tuple(c.in_channels for c in decoder.input_convs) + \
            (decoder.lateral_convs[0].in_channels,) == out[::-1]
    else:  # in_index / in_channels: a list (UperNet) or one index (DeepLabV3+)
        head, aux = model.decode_head, model.auxiliary_head
        if isinstance(head.in_index, int):
            assert head.in_channels == out[head.in_index]
            assert backbone.out_indices[head.in_index] == backbone.num_stages - 1
        else:
            assert tuple(head.in_channels) == tuple(out[i] for i in head.in_index)
        if getattr(head, 'c1_bottleneck', None) is not None:  # DeepLabV3+ reads inputs[0]
            assert head.c1_bottleneck.conv.in_channels == out[0]
            assert backbone.out_strides[0] == 4
        assert backbone.out_indices[aux.in_index] == 2 and aux.in_channels == out[aux.in_index]
        assert aux.loss_decode.loss_weight == 0.4
    layer_scale = cfg.model.backbone.layer_scale_init_value
    if backbone.arch_spec.grn:  # V2: GRN, no layer scale
        assert layer_scale is None and not any(n.endswith('.gamma') and '.grn.' not in n
                                               for n, _ in backbone.named_parameters())
    else:
        assert layer_scale == 1.0


@pytest.mark.parametrize('path', one_per_family_fast(sorted(PUBLISHED_PARAMS_M)))
def test_parameter_count_matches_the_paper(path, built):
    _, model = built(path)
    n = sum(p.numel() for p in model.parameters())
    published = PUBLISHED_PARAMS_M[path] * 1e6
    assert abs(n - published) <= max(0.005 * published, 0.5e6), \
        f'{path}: {n:,} parameters, published {published / 1e6:.0f}M'
    if path in EXACT_PARAMS:
        assert n == EXACT_PARAMS[path]


def test_meta_build_counts_like_a_real_build():
    """The meta-device count is the real one (checked on the smallest shipped model)."""
    path = 'configs/maskrcnn/maskrcnn_convnextv2_atto_3x_coco.py'
    cfg = load(path)
    on_meta = sum(p.numel() for p in build(cfg, device='meta').parameters())
    real = build(load(path))
    assert next(real.parameters()).device == torch.device('cpu')
    assert sum(p.numel() for p in real.parameters()) == on_meta


# The paper's per-config recipes (docs/model_zoo.md "Recipes", the official configs):
# (lr, decay rate, decay type, drop path, crop size for UperNet)
RECIPES = {
    'maskrcnn_convnext_t_coco': (1e-4, 0.95, 'layer_wise', 0.4, None),
    'cascade_maskrcnn_convnext_t_3x_coco': (2e-4, 0.7, 'layer_wise', 0.4, None),
    'cascade_maskrcnn_convnext_s_3x_coco': (2e-4, 0.7, 'layer_wise', 0.6, None),
    'cascade_maskrcnn_convnext_b_3x_coco': (2e-4, 0.8, 'layer_wise', 0.7, None),
    'cascade_maskrcnn_convnext_b_in22k_3x_coco': (1e-4, 0.8, 'layer_wise', 0.6, None),
    'cascade_maskrcnn_convnext_l_in22k_3x_coco': (1e-4, 0.7, 'layer_wise', 0.7, None),
    'cascade_maskrcnn_convnext_xl_in22k_3x_coco': (1e-4, 0.7, 'layer_wise', 0.8, None),
    'upernet_convnext_t_160k_ade20k': (1e-4, 0.9, 'stage_wise', 0.4, 512),
    'upernet_convnext_s_160k_ade20k': (1e-4, 0.9, 'stage_wise', 0.3, 512),
    'upernet_convnext_b_160k_ade20k': (1e-4, 0.9, 'stage_wise', 0.4, 512),
    'upernet_convnext_b_in22k_640_160k_ade20k': (1e-4, 0.9, 'stage_wise', 0.4, 640),
    'upernet_convnext_l_in22k_640_160k_ade20k': (1e-4, 0.9, 'stage_wise', 0.4, 640),
    'upernet_convnext_xl_in22k_640_160k_ade20k': (8e-5, 0.9, 'stage_wise', 0.4, 640),
}


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_is_the_papers(name):
    cfg = read(next(CONFIG_DIR.rglob(f'{name}.py')).relative_to(REPO))
    lr, rate, decay_type, drop_path, crop = RECIPES[name]
    optim = cfg.optim_wrapper
    assert (optim.optimizer.lr, optim.paramwise_cfg.decay_rate, optim.paramwise_cfg.decay_type) \
        == (lr, rate, decay_type)
    assert optim.optimizer.betas == (0.9, 0.999)
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.model.backbone.out_indices == (0, 1, 2, 3)
    warmup, main = cfg.param_scheduler
    if cfg.default_scope == 'mmdet':  # 3x: 36 epochs, x0.1 at 27 and 33, 1000-iteration warm-up
        assert cfg.train_cfg.max_epochs == 36
        assert (warmup.type, warmup.start_factor, warmup.end, warmup.by_epoch) == \
            ('LinearLR', 0.001, 1000, False)
        assert (main.type, main.milestones, main.gamma, main.end) == \
            ('MultiStepLR', [27, 33], 0.1, 36)
        assert cfg.train_dataloader.dataset.pipeline[3].type == 'RandomChoice'  # DETR-style crop
    else:  # 160k iterations, 1500-iteration warm-up, then poly to 0
        assert (cfg.train_cfg.type, cfg.train_cfg.max_iters) == ('IterBasedTrainLoop', 160000)
        assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-6, 1500)
        assert (main.type, main.power, main.eta_min, main.begin, main.end) == \
            ('PolyLR', 1.0, 0.0, 1500, 160000)
        assert cfg.model.data_preprocessor.size == (crop, crop)
        stride = {512: 341, 640: 426}[crop]
        assert cfg.model.test_cfg == dict(mode='slide', crop_size=(crop, crop),
                                          stride=(stride, stride))
        assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
        assert cfg.model.pretrained is None


# DeepLabV3+ (no published recipe with ConvNeXt): mmseg's DeepLabV3+ ADE20K head, data and
# schedule, the ConvNeXt paper's ADE20K optimizer, ASPP rates for the output stride as mmseg's
# -d8 / -d16 configs. (arch, output stride, ASPP rates)
DEEPLAB_RECIPES = {
    'deeplabv3plus_convnext_t_os16_160k_ade20k': ('v1-tiny', 16, (1, 6, 12, 18)),
    'deeplabv3plus_convnext_t_os8_160k_ade20k': ('v1-tiny', 8, (1, 12, 24, 36)),
    'deeplabv3plus_convnext_b_os16_160k_ade20k': ('v1-base', 16, (1, 6, 12, 18)),
}


@pytest.fixture(scope='module')
def deeplab_host(host_config):
    """mmseg's own DeepLabV3+ ResNet-50-D8 ADE20K config, read once."""
    return host_config('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py')


@pytest.mark.parametrize('name', sorted(DEEPLAB_RECIPES))
def test_deeplabv3plus_recipe(name, deeplab_host):
    cfg = read(f'configs/deeplabv3plus/{name}.py')
    arch, output_stride, rates = DEEPLAB_RECIPES[name]
    backbone, head = cfg.model.backbone, cfg.model.decode_head
    assert (backbone.arch, backbone.output_stride, backbone.out_indices) == \
        (arch, output_stride, (0, 2, 3))
    assert (backbone.drop_path_rate, backbone.layer_scale_init_value) == (0.4, 1.0)
    assert head.dilations == rates == (1,) + tuple(r * 16 // output_stride for r in (6, 12, 18))
    host = deeplab_host
    for key in ('type', 'channels', 'c1_channels', 'dropout_ratio', 'num_classes'):
        assert head[key] == host.model.decode_head[key], key
    for key in ('type', 'channels', 'num_convs', 'loss_decode', 'num_classes'):
        assert cfg.model.auxiliary_head[key] == host.model.auxiliary_head[key], key
    assert cfg.model.test_cfg == host.model.test_cfg == dict(mode='whole')
    assert cfg.model.data_preprocessor.size == host.model.data_preprocessor.size == (512, 512)
    assert cfg.train_cfg.max_iters == host.train_cfg.max_iters == 160000
    assert cfg.test_dataloader.dataset.pipeline == host.test_dataloader.dataset.pipeline
    assert [s['type'] for s in cfg.train_dataloader.dataset.pipeline] == \
        [s['type'] for s in host.train_dataloader.dataset.pipeline]
    optim = cfg.optim_wrapper
    assert (optim.optimizer.lr, optim.paramwise_cfg.decay_rate, optim.paramwise_cfg.decay_type) \
        == (1e-4, 0.9, 'stage_wise')
    warmup, main = cfg.param_scheduler
    assert (warmup.type, warmup.end, main.type, main.power, main.end) == \
        ('LinearLR', 1500, 'PolyLR', 1.0, 160000)
