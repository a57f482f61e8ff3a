"""Each fix in convnext_backbone.compat: the stack fails without it and works with it."""
import os
import pickle
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader

from convnext_backbone import compat


# 1. safe checkpoint loading ---------------------------------------------------------------------

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


class WritesMarker:
    """Unpickling this runs ``open(path, 'w')``: the payload of a malicious checkpoint."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def nobody_trusted(monkeypatch):
    monkeypatch.setattr(compat, '_trusted_paths', set())
    monkeypatch.delenv(compat.TRUST_ENV, raising=False)


def test_runner_checkpoint_fails_with_the_stack_loader_alone(runner_checkpoint):
    with pytest.raises(pickle.UnpicklingError):
        compat.ORIGINALS['load_from_local'](str(runner_checkpoint), 'cpu')


def test_runner_checkpoint_loads_safely_without_any_trust(runner_checkpoint, nobody_trusted):
    ckpt = CheckpointLoader.load_checkpoint(str(runner_checkpoint), 'cpu')
    assert ckpt['meta']['epoch'] == 1
    assert 'linear.weight' in ckpt['state_dict']
    assert 'message_hub' in ckpt and 'optimizer' in ckpt


def test_runner_checkpoint_loads_safely_in_a_fresh_process(runner_checkpoint):
    """As on resume after a restart: no HistoryBuffer exists yet in the loading process."""
    code = ('import sys, convnext_backbone; from mmengine.runner import CheckpointLoader; '
            'print(CheckpointLoader.load_checkpoint(sys.argv[1], "cpu")["meta"]["epoch"])')
    proc = subprocess.run([sys.executable, '-c', code, str(runner_checkpoint)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('1')


def test_code_carrying_checkpoint_is_refused_and_never_runs(tmp_path, nobody_trusted):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': WritesMarker(str(marker))}, path)
    with pytest.raises(compat.UntrustedCheckpointError, match='--trust-checkpoint'):
        CheckpointLoader.load_checkpoint(str(path), 'cpu')
    with pytest.raises(pickle.UnpicklingError):  # safe loading is still torch's default elsewhere
        torch.load(path)
    assert not marker.exists()
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ


@pytest.mark.parametrize('how', ['api', 'env-folder'])
def test_user_trust_allows_full_unpickling(tmp_path, nobody_trusted, monkeypatch, how):
    path = tmp_path / 'full.pth'
    torch.save({'state_dict': {}, 'meta': {'extra': Config(dict(a=1))}}, path)
    with pytest.raises(compat.UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint(str(path), 'cpu')
    if how == 'api':
        compat.trust_checkpoint(str(path))
    else:
        monkeypatch.setenv(compat.TRUST_ENV, str(tmp_path))
    assert CheckpointLoader.load_checkpoint(str(path), 'cpu')['meta']['extra'].a == 1


def test_checkpoints_saved_by_this_process_are_trusted(tmp_path, nobody_trusted):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'own.pth'
    save_checkpoint({'meta': {'extra': Config(dict(a=2))}}, str(path))
    assert compat.is_trusted_checkpoint(str(path))
    assert CheckpointLoader.load_checkpoint(str(path), 'cpu')['meta']['extra'].a == 2


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'), 'cpu')


# 2. package lookup without pkg_resources ---------------------------------------------------------

def test_host_config_inheritance_without_pkg_resources(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'pkg_resources', None)  # as with setuptools >= 82
    with pytest.raises(ImportError):
        compat.ORIGINALS['is_installed']('mmdet')
    (tmp_path / 'det.py').write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    (tmp_path / 'seg.py').write_text(
        "_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']\n")
    det = Config.fromfile(tmp_path / 'det.py')
    seg = Config.fromfile(tmp_path / 'seg.py')
    assert det.model.type == 'MaskRCNN' and seg.model.decode_head.type == 'UPerHead'


def test_package_lookup_by_module_and_distribution_name():
    import mmseg
    assert compat.is_installed('mmsegmentation') and compat.is_installed('mmseg')
    assert not compat.is_installed('surely_not_a_package_here')
    expected = os.path.dirname(mmseg.__file__)
    assert compat.get_installed_path('mmseg') == expected
    assert compat.get_installed_path('mmsegmentation') == expected


# 3. distributed runs without a GPU --------------------------------------------------------------

INIT_DIST = textwrap.dedent('''
    import sys, torch
    import mmengine.dist
    from convnext_backbone import compat
    init = compat.ORIGINALS['init_dist'] if sys.argv[1] == 'original' else mmengine.dist.init_dist
    init('pytorch')  # mmengine's default backend: nccl
    from mmengine.model import MMDistributedDataParallel
    ddp = MMDistributedDataParallel(module=torch.nn.Linear(2, 2), device_ids=[0])
    ddp(torch.ones(1, 2)).sum().backward()
    print('backend', torch.distributed.get_backend())
''')


def run_single_rank(variant):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(port))
    return subprocess.run([sys.executable, '-c', INIT_DIST, variant], env=env, timeout=120,
                          capture_output=True, text=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix only acts without a GPU')
def test_init_dist_and_ddp_on_a_machine_without_gpu():
    original = run_single_rank('original')
    assert original.returncode != 0  # torch.cuda.set_device / nccl without a GPU
    fixed = run_single_rank('fixed')
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert 'backend gloo' in fixed.stdout
