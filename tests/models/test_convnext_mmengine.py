"""The backbone inside mmengine: registries (own, mmdet- and mmseg-scoped) and init_weights."""
import copy

import pytest
import torch

from convnext_backbone.models import ConvNeXt

V1_MINI = dict(depths=[1, 1, 3, 1], channels=[8, 16, 32, 64], grn=False)
V2_MINI = dict(depths=[1, 1, 3, 1], channels=[8, 16, 32, 64], grn=True)


def test_init_weights_pretrained_goes_through_load_pretrained(monkeypatch):
    import convnext_backbone.checkpoint as ckpt_module
    calls = []
    monkeypatch.setattr(ckpt_module, 'load_pretrained',
                        lambda backbone, src, prefix=None, logger=None:
                        calls.append((backbone, src, prefix, logger)))
    model = ConvNeXt(arch=V2_MINI, init_cfg=dict(type='Pretrained', checkpoint='w.pth',
                                                 prefix='backbone.'))
    model.init_weights()
    assert len(calls) == 1 and calls[0][:3] == (model, 'w.pth', 'backbone.')
    assert calls[0][3] is not None and model.is_init


def test_init_weights_pretrained_round_trip(tmp_path):
    from mmengine.model import BaseModule
    torch.manual_seed(0)
    source = ConvNeXt(arch=V2_MINI, out_indices=(1, 3))
    path = tmp_path / 'backbone.pth'
    torch.save(source.state_dict(), path)

    class Wrapper(BaseModule):  # as a detector would hold it: mmengine calls our init_weights
        def __init__(self):
            super().__init__()
            self.backbone = ConvNeXt(arch=V2_MINI, out_indices=(1, 3),
                                     init_cfg=dict(type='Pretrained', checkpoint=str(path)))

    wrapper = Wrapper()
    wrapper.init_weights()
    torch.testing.assert_close(wrapper.backbone.state_dict(), source.state_dict(), rtol=0, atol=0)


def test_init_weights_without_pretrained_keeps_the_official_init():
    torch.manual_seed(0)
    model = ConvNeXt(arch=V1_MINI)
    before = copy.deepcopy(model.state_dict())
    model.init_weights()
    torch.testing.assert_close(model.state_dict(), before, rtol=0, atol=0)
    const = ConvNeXt(arch=V1_MINI, init_cfg=dict(type='Constant', layer='Linear', val=0.5))
    const.init_weights()
    assert torch.all(const.stages[0][0].pwconv1.weight == 0.5)


def test_build_from_own_registry():
    from mmengine.registry import DefaultScope

    from convnext_backbone.registry import MODELS
    # Unprefixed names resolve in the current default scope (other tests may have set mmseg's).
    with DefaultScope.overwrite_default_scope('convnext_backbone'):
        model = MODELS.build(dict(type='ConvNeXt', arch='v2-atto', out_indices=(1, 2)))
    assert isinstance(model, ConvNeXt) and model.out_channels == (80, 160)


@pytest.mark.parametrize('host', ['mmdet', 'mmseg'])
def test_build_from_host_scope(host):
    registry = pytest.importorskip(f'{host}.registry')
    import convnext_backbone  # noqa: F401  (registers everything)
    model = registry.MODELS.build(dict(type='convnext_backbone.ConvNeXt', arch='v2-atto'))
    assert isinstance(model, ConvNeXt) and model.out_strides == (4, 8, 16, 32)
    assert copy.deepcopy(model).out_channels == (40, 80, 160, 320)
