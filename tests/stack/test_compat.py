"""convnext_backbone.compat: each host fix is applied only where the installed stack has the
problem, fixes it, can be reverted and switched off; nothing else of the host changes."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader

from convnext_backbone import compat
from convnext_backbone.checkpoint import load_checkpoint_file

from conftest import REPO


def python(code, env=None):
    """Run ``code`` in a fresh interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **(env or {})))


@pytest.fixture
def reverted():
    """The host as it is without our fixes, for the length of a test."""
    compat.revert()
    yield
    compat.apply()


# Only what is needed, listed, revertible, switchable ----------------------------------------------

def test_the_host_keeps_its_own_behaviour_apart_from_listed_fixes():
    import mmengine.runner as runner_package
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import checkpoint as ckpt_module
    assert ckpt_module.save_checkpoint.__module__ == 'mmengine.runner.checkpoint'
    assert runner_package.save_checkpoint is ckpt_module.save_checkpoint
    assert ckpt_module.find_latest_checkpoint.__module__ == 'mmengine.runner.checkpoint'
    assert CheckpointHook._save_checkpoint_with_step.__module__ == 'mmengine.hooks.checkpoint_hook'
    import mmengine.dist.utils as dist_utils
    assert dist_utils.init_dist.__module__ == 'mmengine.dist.utils'
    assert set(compat.applied()) <= set(compat.FIXES)


def test_each_fix_is_applied_exactly_when_its_check_finds_the_problem():
    for name, fix in compat.FIXES.items():
        assert (name in compat.applied()) == fix.needed(), name


def test_torch_2_13_needs_the_checkpoint_loader_fix_and_pinned_setuptools_not_the_lookup_fix():
    assert compat.FIXES['safe_checkpoint_loading'].needed()  # torch >= 2.6: weights_only default
    assert not compat.FIXES['package_lookup_without_pkg_resources'].needed()  # setuptools < 82


def test_revert_gives_the_host_its_loader_back_and_apply_is_idempotent():
    ours = CheckpointLoader._schemes['']
    assert ours is load_checkpoint_file
    compat.revert()
    try:
        assert CheckpointLoader._schemes[''] is not ours
        assert compat.applied() == []
    finally:
        compat.apply()
    compat.apply()
    assert CheckpointLoader._schemes[''] is ours


@pytest.mark.slow  # a fresh interpreter
@pytest.mark.parametrize('value, off', [('1', ['safe_checkpoint_loading']),
                                        ('safe_checkpoint_loading', ['safe_checkpoint_loading'])])
def test_environment_variable_switches_fixes_off(value, off):
    proc = python('import convnext_backbone.compat as c; print(c.applied())',
                  {compat.DISABLE_ENV: value})
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in off:
        assert name not in proc.stdout


@pytest.mark.slow  # a fresh interpreter
def test_an_unknown_fix_name_in_the_environment_variable_is_an_error_naming_the_fixes():
    proc = python('import convnext_backbone', {compat.DISABLE_ENV: 'safe_loading'})
    assert proc.returncode != 0
    assert "no fix named ['safe_loading']" in proc.stderr
    assert 'safe_checkpoint_loading' in proc.stderr


# 1. mmengine's loader on torch >= 2.6 -------------------------------------------------------------

@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint exactly as mmengine's Runner writes it (message hub, meta, optimizer)."""
    sys.path.insert(0, os.path.dirname(__file__))
    try:
        from dist_toy_train import ToyRegressor
    finally:
        sys.path.pop(0)
    from mmengine.runner import Runner
    work_dir = tmp_path_factory.mktemp('runner')
    data = [dict(inputs=torch.ones(4), targets=torch.tensor(1.0))] * 2
    Runner(model=ToyRegressor(), work_dir=str(work_dir),
           train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler'), batch_size=2),
           optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
           train_cfg=dict(by_epoch=True, max_epochs=1)).train()
    return work_dir / 'epoch_1.pth'


def test_runner_checkpoint_fails_with_the_host_loader(runner_checkpoint, reverted):
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(runner_checkpoint), 'cpu')


def test_runner_checkpoint_loads_with_the_fix(runner_checkpoint):
    ckpt = CheckpointLoader.load_checkpoint(str(runner_checkpoint), 'cpu')
    assert ckpt['meta']['epoch'] == 1
    assert 'linear.weight' in ckpt['state_dict']
    assert 'message_hub' in ckpt and 'optimizer' in ckpt


@pytest.mark.slow  # a fresh interpreter
def test_runner_checkpoint_loads_in_a_fresh_process(runner_checkpoint):
    """As on resume after a restart: no HistoryBuffer exists yet in the loading process."""
    proc = python('import sys, convnext_backbone; from mmengine.runner import CheckpointLoader; '
                  f'print(CheckpointLoader.load_checkpoint({str(runner_checkpoint)!r}, "cpu")'
                  '["meta"]["epoch"])')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('1')


# 2. 'mmdet::' configs without pkg_resources ------------------------------------------------------

@pytest.mark.slow  # a fresh interpreter
def test_package_lookup_fix_is_needed_and_works_when_pkg_resources_is_gone(tmp_path):
    """As with setuptools >= 82: the import of pkg_resources fails in a fresh process."""
    (tmp_path / 'det.py').write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    (tmp_path / 'seg.py').write_text(
        "_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']\n")
    code = ('import sys; sys.modules["pkg_resources"] = None\n'
            'from mmengine.config import Config\n'
            'if sys.argv[1:] == ["fixed"]:\n'
            '    import convnext_backbone.compat as c; print("applied", c.applied())\n'
            f'det = Config.fromfile({str(tmp_path / "det.py")!r})\n'
            f'seg = Config.fromfile({str(tmp_path / "seg.py")!r})\n'
            'print(det.model.type, seg.model.decode_head.type)\n')
    host = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert host.returncode != 0 and 'pkg_resources' in host.stderr
    fixed = subprocess.run([sys.executable, '-c', code, 'fixed'], capture_output=True, text=True,
                           timeout=120)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "'package_lookup_without_pkg_resources'" in fixed.stdout
    assert 'MaskRCNN UPerHead' in fixed.stdout


def test_package_lookup_by_module_and_distribution_name():
    import mmseg
    assert compat.is_installed('mmsegmentation') and compat.is_installed('mmseg')
    assert not compat.is_installed('surely_not_a_package_here')
    expected = os.path.dirname(mmseg.__file__)
    assert compat.get_installed_path('mmseg') == expected
    assert compat.get_installed_path('mmsegmentation') == expected


def test_host_config_inheritance_works_with_our_configs():
    cfg = Config.fromfile(str(REPO / 'configs' / 'maskrcnn_convnext_t_coco.py'))
    assert cfg.model.backbone.type == 'convnext_backbone.ConvNeXt'
