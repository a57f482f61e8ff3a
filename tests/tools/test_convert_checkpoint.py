"""tools/convert_checkpoint.py: converts timm weights to .safetensors / .pth, fails clearly.

Two runs go through a real subprocess (the documented command line); the error paths and the
no-network check call the tool's ``main`` in-process to stay quick.
"""
import importlib.util
import socket

import pytest
import timm
import torch

from convnext_backbone.checkpoint import load_pretrained, read_state_dict
from convnext_backbone.models import ConvNeXt

from checkpoint_layouts import randomise_
from conftest import REPO, run_tool

TOOL = REPO / 'tools' / 'convert_checkpoint.py'


@pytest.fixture(scope='module')
def timm_file(tmp_path_factory):
    """A timm convnextv2_atto classifier checkpoint on disk (random weights)."""
    model = timm.create_model('convnextv2_atto', pretrained=False, num_classes=10)
    randomise_(model, seed=3)
    path = tmp_path_factory.mktemp('ckpt') / 'convnextv2_atto_timm.pth'
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('convert_checkpoint', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # the tool in a subprocess
@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_converts_timm_file(suffix, timm_file, tmp_path):
    src, timm_sd = timm_file
    dst = tmp_path / f'converted{suffix}'
    proc = run_tool(TOOL, src, dst, '--arch', 'v2-atto')
    assert 'timm format' in proc.stdout and 'looks like v2-atto' in proc.stdout
    assert 'Dropped 4 keys the backbone does not use' in proc.stdout
    assert 'head.fc.weight' in proc.stdout
    if suffix == '.pth':
        assert set(torch.load(dst, weights_only=True)) == {'state_dict', 'meta'}
    converted = read_state_dict(dst)
    model = ConvNeXt(arch='v2-atto')
    report = load_pretrained(model, dst, logger='silent')
    assert report.format == 'official' and len(report.fresh) == 8
    assert len(converted) == report.num_loaded
    torch.testing.assert_close(model.stages[2][3].grn.gamma,
                               timm_sd['stages.2.blocks.3.mlp.grn.weight'], rtol=0, atol=0)


@pytest.mark.slow  # the tool in a subprocess
def test_missing_source_exits_non_zero(tmp_path):
    proc = run_tool(TOOL, tmp_path / 'absent.pth', tmp_path / 'out.pth', check=False)
    assert proc.returncode == 1
    assert 'absent.pth' in proc.stderr and 'does not exist' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_wrong_arch_and_bad_format_exit_non_zero(tool, timm_file, tmp_path, capsys):
    src, _ = timm_file
    assert tool.main([str(src), str(tmp_path / 'o.pth'), '--arch', 'v1-tiny']) == 1
    err = capsys.readouterr().err
    assert "'v1-tiny'" in err and 'looks like v2-atto' in err
    assert tool.main([str(src), str(tmp_path / 'o.pth'), '--format', 'fcmae']) == 1
    assert tool.main([str(src), str(src)]) == 1
    assert 'differ' in capsys.readouterr().err
    assert not (tmp_path / 'o.pth').exists()


def test_makes_no_network_access(tool, timm_file, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('convert_checkpoint.py tried to open a network connection')

    monkeypatch.setattr(socket, 'socket', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    src, _ = timm_file
    assert tool.main([str(src), str(tmp_path / 'o.safetensors'), '--arch', 'v2-atto']) == 0
