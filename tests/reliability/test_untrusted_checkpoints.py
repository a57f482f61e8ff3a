"""A checkpoint crafted to run code when unpickled never runs it -- through our backbone's
``init_cfg=dict(type='Pretrained')``, tools/convert_checkpoint.py, mmengine's loader (load_from,
resume, init_detector), tools/test.py CHECKPOINT and tools/train.py --resume PATH: each fails with
a clear error and the payload's marker file never appears. A full training checkpoint that does
need full unpickling still resumes once the user vouches for it (--trust-checkpoint)."""
import argparse
import shutil

import pytest
import torch
from mmengine.runner import CheckpointLoader

from convnext_backbone import checkpoint as ckpt
from convnext_backbone.checkpoint import UnsafeCheckpointError, safety
from convnext_backbone.models import ConvNeXt

from conftest import REPO, load_tool, run_tool
from toy_runs import TOY_SEG, seg_options, train

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

ARCH = dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256])  # the toy configs' backbone


class WritesMarker:
    """Unpickling this executes code that writes ``path``: the payload of a malicious file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('the checkpoint ran code')",))


@pytest.fixture
def nobody_trusted(monkeypatch):
    monkeypatch.setattr(safety, '_trusted_paths', set())
    monkeypatch.delenv(ckpt.TRUST_ENV, raising=False)


def evil_copy(checkpoint: dict, path, marker, legacy=False):
    """``checkpoint`` (real weights, so nothing else would fail) plus the payload."""
    torch.save({**checkpoint, 'meta': {**checkpoint.get('meta', {}), 'note': WritesMarker(marker)}},
               path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture(scope='module')
def trained(trained_seg_run):
    """A real training checkpoint of the toy UperNet (tools/train.py, 2 iterations; conftest)."""
    return trained_seg_run / 'iter_2.pth'


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy-format'])
def test_backbone_pretrained_init_refuses_and_never_runs_the_payload(tmp_path, legacy):
    weights = {'state_dict': ConvNeXt(arch=ARCH).state_dict()}
    path = evil_copy(weights, tmp_path / 'convnext.pth', tmp_path / 'marker', legacy)
    backbone = ConvNeXt(arch=ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(UnsafeCheckpointError, match='refusing to load') as error:
        backbone.init_weights()
    assert 'builtins.exec' in str(error.value) and 're-save just its weights' in str(error.value)
    assert not (tmp_path / 'marker').exists()


def test_convert_tool_refuses_and_never_runs_the_payload(tmp_path, capsys):
    weights = {'model': ConvNeXt(arch=ARCH).state_dict()}
    path = evil_copy(weights, tmp_path / 'convnext.pth', tmp_path / 'marker')
    status = load_tool('convert_checkpoint').main([str(path), str(tmp_path / 'out.safetensors')])
    assert status == 1
    err = capsys.readouterr().err
    assert 'refusing to load' in err and 'builtins.exec' in err
    assert not (tmp_path / 'marker').exists() and not (tmp_path / 'out.safetensors').exists()


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy-format'])
def test_mmengine_loader_refuses_and_never_runs_the_payload(trained, tmp_path, legacy,
                                                           nobody_trusted):
    """load_from, resume, init_detector/init_model all read through this loader."""
    checkpoint = CheckpointLoader.load_checkpoint(str(trained), 'cpu')  # the real one: fine
    path = evil_copy(checkpoint, tmp_path / 'evil.pth', tmp_path / 'marker', legacy)
    with pytest.raises(ckpt.UntrustedCheckpointError, match='--trust-checkpoint'):
        CheckpointLoader.load_checkpoint(str(path), 'cpu')
    assert not (tmp_path / 'marker').exists()


@pytest.mark.parametrize('tool', ['test.py CHECKPOINT', 'train.py --resume PATH'])
def test_tools_refuse_and_never_run_the_payload(trained, toy_root, tmp_path, tool):
    checkpoint = CheckpointLoader.load_checkpoint(str(trained), 'cpu')
    path = evil_copy(checkpoint, tmp_path / 'evil.pth', tmp_path / 'marker')
    if tool.startswith('test.py'):
        proc = run_tool(REPO / 'tools' / 'test.py', TOY_SEG, path, '--work-dir', tmp_path / 'w',
                        check=False)
    else:
        proc = run_tool(REPO / 'tools' / 'train.py', TOY_SEG, '--work-dir', tmp_path / 'w',
                        '--resume', path, '--cfg-options', *seg_options(toy_root, 3), check=False)
    assert proc.returncode != 0
    assert f'\nerror: {path}: refusing to load' in '\n' + proc.stderr, proc.stderr[-3000:]
    assert 'builtins.exec' in proc.stderr and f'--trust-checkpoint {path}' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'marker').exists()


def test_trusted_full_training_checkpoint_still_resumes(trained, toy_root, tmp_path):
    """A checkpoint that needs full unpickling (here an argparse.Namespace in its meta, as some
    training scripts store) is refused until the user vouches for it, then resumes."""
    checkpoint = torch.load(trained, weights_only=False)
    checkpoint['meta']['args'] = argparse.Namespace(lr=1e-3)
    path = tmp_path / 'full.pth'
    torch.save(checkpoint, path)
    work_dir = tmp_path / 'w'
    options = seg_options(toy_root, 3)
    refused = train(work_dir, options, '--resume', path, check=False)
    assert refused.returncode != 0 and 'argparse.Namespace' in refused.stderr
    assert '--trust-checkpoint' in refused.stderr and 'Traceback' not in refused.stderr

    proc = train(work_dir, options, '--resume', path, '--trust-checkpoint', path)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    assert torch.load(work_dir / 'iter_3.pth', weights_only=False)['meta']['iter'] == 3


def test_a_trusted_folder_covers_its_files(trained, tmp_path, nobody_trusted):
    folder = tmp_path / 'mine'
    folder.mkdir()
    shutil.copy(trained, folder / 'a.pth')
    checkpoint = torch.load(folder / 'a.pth', weights_only=False)
    checkpoint['meta']['args'] = argparse.Namespace(lr=1e-3)
    torch.save(checkpoint, folder / 'a.pth')
    with pytest.raises(ckpt.UntrustedCheckpointError):
        ckpt.check_checkpoint(str(folder / 'a.pth'))
    ckpt.trust_checkpoint(str(folder))
    ckpt.check_checkpoint(str(folder / 'a.pth'))
    assert CheckpointLoader.load_checkpoint(str(folder / 'a.pth'), 'cpu')['meta']['args'].lr == 1e-3
