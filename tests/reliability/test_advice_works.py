"""Advice that is executed: every message of ours that tells the user to set or run something,
triggered, its advice followed, and the thing that refused now passing.

* ``--cfg-options`` advice: one generic mechanism (``advice.follow``) reads the ``KEY=VALUE``
  items of the message exactly as our tools parse ``--cfg-options`` and applies them to the
  config; the same check then passes. Cases: every kind of message that advises options.
* Flags and config entries (``--overwrite-checkpoints``, ``--resume``, ``--trust-checkpoint``,
  ``--partial-load``, ``--allow-nonfinite``, ``--overwrite-results``, ``--amp-dtype
  bfloat16``, another ``--work-dir``, the hook a flag needs, ``--tta``'s base config): what
  the flag sets, set as the tool sets it, and the same call passes.
* ``pip install X``: X is the distribution that provides the missing module; ``make demo``: a
  target of the Makefile (the demo itself runs in tests/packaging/test_make_demo.py).

The end-to-end sides live beside the mechanisms (a detector's bf16 training step:
tests/engine/test_cpu_autocast.py; --resume after a failed save or Ctrl-C:
tests/reliability/test_checkpoint_write_failures.py and test_interrupted_training.py).
"""
import importlib.metadata
import re
import types

import pytest
import torch
from advice import advised_items, follow
from bad_data import TOY_DET, TOY_DINO, TOY_SEG, other_split, toy_config
from mmengine.config import Config
from mmengine.logging import MMLogger

from convnext_backbone.checkpoint import UntrustedCheckpointError, safety
from convnext_backbone.checkpoint.compatibility import check_model_checkpoint
from convnext_backbone.cli import checks, config, config_values, late_failures, results
from convnext_backbone.cli.head_classes import check_head_classes, dataset_classes
from convnext_backbone.deploy.driver import refuse_slide
from convnext_backbone.engine import CPUAutocastOptimWrapper
from convnext_backbone.engine.checkpoint_hook import WorkDirInUseError
from convnext_backbone.engine.hooks import NonFiniteLossError, NonFiniteLossHook

from conftest import REPO, load_tool

DET, SEG, DINO = TOY_DET, TOY_SEG, TOY_DINO
toy = toy_config


def heads_vs_data(cfg):
    check_head_classes(cfg, 'train_dataloader',
                       dataset_classes(cfg, cfg.train_dataloader.dataset))


# --cfg-options advice: (config, options making the mistake, the check, placeholders) -----------
OPTION_CASES = {
    'dataset_not_found': (DET, {'train_dataloader.dataset.data_root': '/no/such/coco/'},
                          lambda cfg: checks.check_datasets(cfg, ['train_dataloader']),
                          {'PATH': '{coco}'}),
    'head_classes': (DET, {'train_dataloader.dataset.metainfo.classes': ('rectangle', 'star')},
                     heads_vs_data, {}),
    'learning_rate_not_a_number': (DET, {'optim_wrapper.optimizer.lr': 'abc'},
                                   config_values.check_config_values, {}),
    'backbone_value_out_of_range': (SEG, {'model.backbone.drop_path_rate': 1.5},
                                    config_values.check_config_values, {}),
    'hook_setting_of_another_type': (SEG, {'custom_hooks.0.action': 'stop'},
                                     config_values.check_config_values, {}),
    'save_best_unknown': (SEG, {'default_hooks.checkpoint.save_best': 'miou'},
                          late_failures.check_late_failures, {}),
    'evaluator_of_other_images': (
        DET, {'val_evaluator.ann_file': other_split},
        late_failures.check_late_failures, {}),
    'export_of_a_sliding_window_config': (
        SEG, {'model.test_cfg': dict(mode='slide', crop_size=(64, 64), stride=(32, 32))},
        lambda cfg: refuse_slide(cfg, SEG), {}),
}


@pytest.mark.parametrize('case', list(OPTION_CASES))
def test_advised_cfg_options_make_the_check_pass(case, toy_root):
    path, mistake, check, placeholders = OPTION_CASES[case]
    coco = f'{toy_root}/coco/'
    fill = {k: v.format(coco=coco) if isinstance(v, str) else v(toy_root) if callable(v) else v
            for k, v in mistake.items()}
    cfg = toy(path, toy_root, **fill)
    with pytest.raises(Exception) as caught:
        check(cfg)
    message = str(caught.value)
    assert advised_items(message), message
    check(follow(cfg, message, {k: v.format(coco=coco) for k, v in placeholders.items()}))


# Flags and config entries -----------------------------------------------------------------------

def test_earlier_checkpoints_overwrite_or_resume(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'x')
    cfg = Config(dict(work_dir=str(tmp_path), default_hooks=dict(checkpoint=dict(
        type='convnext_backbone.CrashSafeCheckpointHook'))))
    with pytest.raises(WorkDirInUseError) as caught:
        checks.check_fresh_run(cfg)
    assert '--overwrite-checkpoints' in str(caught.value) and '--resume' in str(caught.value)
    resumed = cfg.copy()
    config.set_resume(resumed, 'auto')  # --resume
    checks.check_fresh_run(resumed)
    config.set_checkpoint_hook_options(cfg, overwrite=True)  # --overwrite-checkpoints
    checks.check_fresh_run(cfg)
    assert re.search(r'config: default_hooks\.checkpoint\.overwrite=True', str(caught.value))


def test_a_flag_without_its_hook_names_the_hook_to_add():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook'))))
    with pytest.raises(config.HookOptionError) as caught:
        config.set_checkpoint_hook_options(cfg, partial_load=True)
    advised = re.search(r'Add (\w+) = (dict\(.*\)) to the config', str(caught.value))
    cfg.merge_from_dict({advised.group(1): eval(advised.group(2), {'dict': dict})})  # as written
    config.set_checkpoint_hook_options(cfg, partial_load=True)
    assert cfg.default_hooks.checkpoint.partial_load is True


def test_untrusted_checkpoint_trusted_on_the_command_line(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': {}, 'meta': {'args': types.SimpleNamespace(lr=1)}}, path)
    with pytest.raises(UntrustedCheckpointError, match=f'--trust-checkpoint {path}'):
        safety.check_checkpoint(str(path))
    config.trust_checkpoints([str(path)])  # --trust-checkpoint PATH
    try:
        safety.check_checkpoint(str(path))
    finally:
        safety._trusted_paths.discard(str(path))


def test_a_checkpoint_that_does_not_fit_loads_partially_on_request():
    model = {'backbone.w': torch.zeros(2), 'head.fc.weight': torch.zeros(5, 2)}
    state = {'backbone.w': torch.ones(2), 'head.fc.weight': torch.ones(81, 2)}
    with pytest.raises(Exception, match='--partial-load') as caught:
        check_model_checkpoint(dict(state), model, 'load_from x.pth')
    assert 'default_hooks.checkpoint.partial_load=True' in str(caught.value)
    report = check_model_checkpoint(state, model, 'load_from x.pth', partial=True)
    assert report.fresh == ['head.fc.weight'] and list(state) == ['backbone.w']


def test_a_non_finite_loss_continues_with_allow_nonfinite():
    runner = types.SimpleNamespace(iter=4, train_loop=None, message_hub=types.SimpleNamespace(
        get_info=lambda key: None))
    outputs = {'loss': torch.tensor(float('nan'))}
    with pytest.raises(NonFiniteLossError, match='--allow-nonfinite'):
        NonFiniteLossHook().after_train_iter(runner, 0, None, outputs)
    cfg = Config(dict(custom_hooks=[dict(type='convnext_backbone.NonFiniteLossHook')]))
    assert config.allow_nonfinite_losses(cfg)  # what --allow-nonfinite does
    NonFiniteLossHook(**{k: v for k, v in cfg.custom_hooks[0].items() if k != 'type'}
                      ).after_train_iter(runner, 0, None, outputs)


def test_earlier_results_replaced_with_overwrite_results(tmp_path):
    out = tmp_path / 'results.pkl'
    out.write_bytes(b'earlier')
    cfg = Config(dict(default_scope='mmdet', test_evaluator=dict(type='CocoMetric')))
    with pytest.raises(results.ResultsExistError, match=results.FLAG):
        results.check_target(cfg, str(out), overwrite=False)
    args = load_tool('test').parse_args([DET, 'x.pth', '--out', str(out), results.FLAG])
    results.check_target(cfg, str(out), overwrite=args.overwrite_results)


def test_the_fp32_notice_names_the_bf16_flag_that_then_works(monkeypatch, capsys):
    """A CPU with bf16: an fp16 AMP config falls back to fp32 and the notice names
    --amp-dtype bfloat16; with it, the toy Mask R-CNN config gets the CPU bf16 wrapper (a
    detector's bf16 training step: tests/engine/test_cpu_autocast.py)."""
    from convnext_backbone.engine import cpu_supports_bf16
    if not cpu_supports_bf16():
        pytest.skip('CPU without bf16 support: the notice says so instead')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    MMLogger.get_instance('advice_test')  # a current logger that prints (as a tool's)
    cfg = config.load_config(DET)
    config.enable_amp(cfg)  # --amp: fp16
    config.fall_back_to_fp32_without_gpu(cfg)
    notice = capsys.readouterr()
    assert 'tools/train.py --amp-dtype bfloat16' in notice.out + notice.err
    args = load_tool('train').parse_args([DET, '--amp-dtype', 'bfloat16'])
    cfg = config.load_config(DET)
    config.enable_amp(cfg, args.amp_dtype)
    assert config.cpu_autocast_without_gpu(cfg)
    assert cfg.optim_wrapper.type == 'convnext_backbone.CPUAutocastOptimWrapper'
    CPUAutocastOptimWrapper(dtype=cfg.optim_wrapper.dtype,
                            optimizer=torch.optim.SGD([torch.zeros(1, requires_grad=True)], 0.1))


@pytest.mark.slow  # a DINO test step through mmdet's TTA at three scales
def test_tta_for_a_box_detector_as_the_message_says(toy_root, tmp_path):
    tool = load_tool('test')
    cfg = toy(DINO, toy_root)
    with pytest.raises(ValueError) as caught:
        tool.use_tta(cfg)
    base = re.search(r"_base_ = \[\.\.\., '([^']+)'\]", str(caught.value)).group(1)
    path = tmp_path / 'dino_tta.py'
    path.write_text(f'_base_ = [{DINO!r}, {base!r}]\n')
    cfg = toy(str(path), toy_root)
    tool.use_tta(cfg)
    for step in cfg.tta_pipeline[1]['transforms'][0]:  # the toy's images are 64 pixels
        step['scale'] = (64, 64)
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS, MODELS
    model = MODELS.build(cfg.model).eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    with torch.no_grad():
        predictions = model.test_step(pseudo_collate([dataset[0]]))
    assert len(predictions) == 1 and len(predictions[0].pred_instances.bboxes)


def test_another_work_dir_when_one_is_in_use(tmp_path):
    from convnext_backbone.cli.work_dir import WorkDirBusyError, claim_work_dir
    with claim_work_dir(str(tmp_path / 'a'), 'train'):
        with pytest.raises(WorkDirBusyError, match='--work-dir'):
            with claim_work_dir(str(tmp_path / 'a'), 'train'):
                pass
        with claim_work_dir(str(tmp_path / 'b'), 'train'):  # another --work-dir
            pass


# pip install / make ----------------------------------------------------------------------------
PIP_ADVICE = {  # module our code imports -> where its message advises a pip install
    'onnxruntime': REPO / 'convnext_backbone' / 'deploy' / 'quantize.py',
    'safetensors': REPO / 'convnext_backbone' / 'checkpoint' / 'io.py',
}


@pytest.mark.parametrize('module', list(PIP_ADVICE))
def test_pip_install_names_the_distribution_of_the_missing_module(module):
    named = re.findall(r'pip install ([\w-]+)', PIP_ADVICE[module].read_text())
    assert named, PIP_ADVICE[module]
    providers = importlib.metadata.packages_distributions().get(module, [])
    assert all(name in providers for name in named), (named, providers)


def test_pip_install_the_deploy_extra_gives_what_evaluation_imports():
    text = (REPO / 'convnext_backbone' / 'deploy' / 'evaluate.py').read_text()
    assert "pip install -e '.[deploy]'" in text
    extras = re.search(r"'deploy': \[([^\]]*)\]", (REPO / 'setup.py').read_text()).group(1)
    assert 'onnxruntime' in extras


def test_make_demo_is_a_target():
    assert re.search(r'^demo:', (REPO / 'Makefile').read_text(), re.M)
    assert (REPO / 'tests' / 'packaging' / 'test_make_demo.py').is_file()
