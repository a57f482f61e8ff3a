"""What convnext_backbone.checkpoint refuses, each with an error naming the problem: files that
are missing, truncated or carry code (never run), and weights of another arch or version, keys
that match nothing, blocks left out (never a silent random init). Big archs are built on the
meta device: real shapes, nothing allocated."""
import os

import numpy as np
import pytest
import torch
from tiny_convnext import ours, randomised_ours

from convnext_backbone.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointReadError,
    UnknownCheckpointFormatError,
    UnsafeCheckpointError,
    load_pretrained,
    read_state_dict,
    save_state_dict,
)
from convnext_backbone.models import ConvNeXt


# ----------------------------------------------------------------------------- bad files
def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / 'nope' / 'convnext_tiny.pth'
    with pytest.raises(FileNotFoundError, match='convnext_tiny.pth'):
        read_state_dict(path)
    with pytest.raises(FileNotFoundError, match='convnext_tiny.pth'):
        load_pretrained(ours(), path)


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_truncated_file_is_a_clear_error(suffix, tmp_path):
    good = tmp_path / f'good{suffix}'
    save_state_dict(randomised_ours().state_dict(), good)
    data = good.read_bytes()
    bad = tmp_path / f'truncated{suffix}'
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointReadError, match='not a readable checkpoint') as err:
        read_state_dict(bad)
    assert str(bad) in str(err.value)
    for name, content in (('empty.pth', b''), ('text.pth', b'not a checkpoint\n' * 10)):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointReadError, match=f'{name} is not a readable checkpoint'):
            read_state_dict(tmp_path / name)


class _Payload:
    """Unpickling this would create a marker file (it reduces to a call of os.system)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class _Custom:
    """A plain class of this test module: unpickling it would import and build it."""


class _NumpyPayload:
    """Reduces to numpy.save(marker, ...): a 'numpy.' global, replaced by an inert placeholder."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return np.save, (str(self.marker), np.zeros(1))


@pytest.mark.parametrize('zipped', [True, False], ids=['zip', 'legacy'])
def test_pickled_code_is_refused_and_never_run(zipped, tmp_path):
    marker = tmp_path / 'marker'
    sd = {'stages.0.0.dwconv.weight': torch.zeros(8, 1, 7, 7)}
    torch.save({'state_dict': sd, 'evil': _Payload(marker)}, tmp_path / 'evil.pth',
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(UnsafeCheckpointError, match='refusing') as err:
        read_state_dict(tmp_path / 'evil.pth')
    assert 'weights_only=False' in str(err.value) and 'evil.pth' in str(err.value)
    assert 'system' in str(err.value)
    assert not marker.exists()

    torch.save({'state_dict': sd, 'obj': _Custom()}, tmp_path / 'cls.pth')
    with pytest.raises(UnsafeCheckpointError, match='test_pretrained_weights_refused._Custom'):
        read_state_dict(tmp_path / 'cls.pth')

    numpy_marker = tmp_path / 'numpy_marker.npy'
    torch.save({'state_dict': sd, 'x': _NumpyPayload(numpy_marker)}, tmp_path / 'np.pth')
    assert list(read_state_dict(tmp_path / 'np.pth')) == list(sd)
    assert not numpy_marker.exists() and not marker.exists()


# ----------------------------------------------------------------------------- mismatches
def _on_meta(arch: str) -> ConvNeXt:
    """A big arch with real shapes and no memory: the mismatch is found before any copy."""
    with torch.device('meta'):
        return ConvNeXt(arch=arch)


def _meta_state_dict(arch: str) -> dict:
    return _on_meta(arch).state_dict()


def test_deeper_arch_is_refused_with_arch_and_keys():
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(_on_meta('v1-tiny'), _meta_state_dict('v1-small'))
    message = str(err.value)
    assert "'v1-tiny'" in message and 'unexpected keys' in message
    assert 'stages.2.9.' in message and 'looks like v1-small' in message
    assert err.value.arch == 'v1-tiny'
    assert len(err.value.unexpected) == 18 * 9  # 18 more blocks of 9 tensors each
    assert not err.value.mismatched
    assert isinstance(err.value, CheckpointError)


def test_wider_arch_is_refused_with_shapes():
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(_on_meta('v1-tiny'), _meta_state_dict('v1-base'))
    message = str(err.value)
    assert "'v1-tiny'" in message and 'shape mismatches' in message
    assert 'downsample_layers.0.0.weight (128, 3, 4, 4) vs model (96, 3, 4, 4)' in message
    assert 'looks like v1-base' in message


def test_v1_checkpoint_into_v2_is_refused():
    with pytest.raises(CheckpointMismatchError, match="'custom'") as err:
        load_pretrained(ours(grn=True), randomised_ours(grn=False).state_dict())
    assert any('.gamma' in k for k in err.value.unexpected)
    assert any('.grn.' in k for k in err.value.missing)


def test_keys_matching_nothing_are_an_error_not_a_random_init():
    with pytest.raises(CheckpointMismatchError, match='none of its'):
        load_pretrained(ours(), {'downsample_layers.7.0.weight': torch.zeros(3)})
    with pytest.raises(UnknownCheckpointFormatError):
        load_pretrained(ours(), {'conv1.weight': torch.zeros(3)})
    with pytest.raises(CheckpointMismatchError, match="prefix 'model.backbone.'"):
        load_pretrained(ours(), randomised_ours().state_dict(), prefix='model.backbone.')


def test_missing_block_weights_are_an_error():
    sd = randomised_ours().state_dict()
    del sd['stages.2.1.pwconv1.weight']
    with pytest.raises(CheckpointMismatchError, match='stages.2.1.pwconv1.weight'):
        load_pretrained(ours(), sd)
