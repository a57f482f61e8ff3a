"""The export's notes on what the host computes outside the graph: the toy configs' test
pipelines (our checked loader, the resize, annotations, packing) hold nothing the user must
apply besides the resize; a step the graph does not run is named."""
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
