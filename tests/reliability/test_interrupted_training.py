"""A training run killed with SIGKILL -- in the middle of an iteration, or in the middle of a
checkpoint write -- resumes with ``--resume`` and ends with exactly the weights of a run that was
never interrupted (same seed, deterministic CPU toy UperNet, num_workers=0). Plus the pieces:
atomic checkpoint writes, the checkpoint ``--resume`` picks, and the random-state hook."""
import os
import random

import numpy as np
import pytest
import torch
from mmengine.runner import CheckpointLoader

from convnext_backbone import checkpoint as ckpt
from convnext_backbone.checkpoint.files import atomic_target
from convnext_backbone.engine.hooks import get_rng_state, set_rng_state

from toy_runs import assert_same_training_state, seg_options, train, train_until_killed

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

MAX_ITERS = 4


@pytest.fixture(scope='module')
def uninterrupted(toy_root, tmp_path_factory):
    """The reference: 4 iterations in one go, checkpoints at 2 and 4 (the newest kept)."""
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    train(work_dir, seg_options(toy_root, MAX_ITERS))
    return work_dir / f'iter_{MAX_ITERS}.pth'


def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_weights(
        toy_root, tmp_path, uninterrupted):
    work_dir = tmp_path / 'run'
    options = seg_options(toy_root, MAX_ITERS)
    # Killed while iteration 4 runs (its batch loaded): iterations 1-3 done, iter_2.pth saved.
    train_until_killed(work_dir, options, ['--pause-before-iter', 4])
    assert (work_dir / 'last_checkpoint').read_text().strip() == str(work_dir / 'iter_2.pth')
    assert not (work_dir / f'iter_{MAX_ITERS}.pth').exists()

    out = train(work_dir, options, '--resume')
    log = out.stdout + out.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'random states of iteration 2 restored' in log
    assert_same_training_state(work_dir / f'iter_{MAX_ITERS}.pth', uninterrupted)


def test_sigkill_during_a_checkpoint_write_never_leaves_a_truncated_checkpoint_to_resume(
        toy_root, tmp_path):
    work_dir = tmp_path / 'run'
    options = seg_options(toy_root, MAX_ITERS)
    # Killed with half of iter_4.pth on disk. The toy config keeps 1 checkpoint: stock mmengine
    # deletes iter_2.pth before writing iter_4.pth, in place, so nothing complete would remain.
    train_until_killed(work_dir, options, ['--stall-write', 'iter_4.pth'])
    leftovers = [p.name for p in work_dir.iterdir() if p.name.startswith('.iter_4.pth.tmp-')]
    assert len(leftovers) == 1, sorted(os.listdir(work_dir))  # the half-written temporary
    assert not (work_dir / 'iter_4.pth').exists()             # never under the final name
    for path in work_dir.glob('*.pth'):
        assert ckpt.is_complete_checkpoint(str(path)), path
    assert (work_dir / 'last_checkpoint').read_text().strip() == str(work_dir / 'iter_2.pth')
    picked = ckpt.find_latest_checkpoint(str(work_dir))     # what --resume takes
    assert picked == str(work_dir / 'iter_2.pth')
    checkpoint = CheckpointLoader.load_checkpoint(picked, 'cpu')  # mmengine's loader, safely
    assert checkpoint['meta']['iter'] == 2 and 'rng_state' in checkpoint
    # Resuming from iter_2.pth continues exactly: the test above. The next save of iter_4.pth
    # removes the half-written temporary:
    ckpt.write_atomically(str(work_dir / 'iter_4.pth'), 'x')
    assert not [p for p in work_dir.iterdir() if '.tmp-' in p.name]


# The pieces, in process ---------------------------------------------------------------------------

def stalling_put(monkeypatch):
    """Make mmengine's local file writes die halfway (as a kill would), raising instead."""
    from mmengine.fileio.backends import local_backend

    def put(self, obj, filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise KeyboardInterrupt('killed mid-write')

    monkeypatch.setattr(local_backend.LocalBackend, 'put', put)


def test_stock_save_leaves_a_truncated_file_ours_keeps_the_previous_one(tmp_path, monkeypatch):
    """mmengine's save_checkpoint (still mmengine's own after importing us) writes in place; the
    crash-safe hook writes through atomic_target, which keeps the previous file on a kill."""
    from mmengine.runner.checkpoint import save_checkpoint
    old = {'state_dict': {'w': torch.zeros(1000)}, 'meta': {'iter': 2}}
    new = {'state_dict': {'w': torch.ones(1000)}, 'meta': {'iter': 4}}
    for path in (tmp_path / 'stock.pth', tmp_path / 'ours.pth'):
        save_checkpoint(old, str(path))
    stalling_put(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(new, str(tmp_path / 'stock.pth'))
    with pytest.raises(KeyboardInterrupt):
        with atomic_target(str(tmp_path / 'ours.pth')) as temporary:
            save_checkpoint(new, temporary)
    assert not ckpt.is_complete_checkpoint(str(tmp_path / 'stock.pth'))
    assert ckpt.is_complete_checkpoint(str(tmp_path / 'ours.pth'))
    assert torch.equal(CheckpointLoader.load_checkpoint(str(tmp_path / 'ours.pth'), 'cpu')
                       ['state_dict']['w'], old['state_dict']['w'])
    assert sorted(os.listdir(tmp_path)) == ['ours.pth', 'stock.pth']  # temporary removed


@pytest.mark.parametrize('last_checkpoint', ['missing', 'empty', 'names a truncated file',
                                             'names a deleted file'])
def test_resume_takes_the_newest_complete_checkpoint_when_last_checkpoint_is_unusable(
        tmp_path, last_checkpoint):
    for i, step in enumerate((2, 4)):
        torch.save({'state_dict': {'w': torch.ones(10)}}, tmp_path / f'iter_{step}.pth')
        os.utime(tmp_path / f'iter_{step}.pth', (1000 + i, 1000 + i))
    (tmp_path / 'iter_6.pth').write_bytes((tmp_path / 'iter_4.pth').read_bytes()[:100])
    text = {'missing': None, 'empty': '', 'names a truncated file': str(tmp_path / 'iter_6.pth'),
            'names a deleted file': str(tmp_path / 'iter_8.pth')}[last_checkpoint]
    if text is not None:
        (tmp_path / 'last_checkpoint').write_text(text)
    assert ckpt.find_latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')


def test_resume_follows_last_checkpoint_when_it_is_complete(tmp_path):
    for step in (2, 4):
        torch.save({'state_dict': {'w': torch.ones(10)}}, tmp_path / f'iter_{step}.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert ckpt.find_latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    assert ckpt.find_latest_checkpoint(str(tmp_path / 'nothing')) is None


def test_truncated_checkpoint_is_a_clear_error_not_a_zip_trace(tmp_path):
    from convnext_backbone.checkpoint import CheckpointReadError
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointReadError, match='truncated') as error:
        CheckpointLoader.load_checkpoint(str(path), 'cpu')
    assert str(path) in str(error.value) and 'use another one' in str(error.value)


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = get_rng_state()
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.save({'rng_state': state}, tmp_path / 'c.pth')
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    set_rng_state(torch.load(tmp_path / 'c.pth', weights_only=True)['rng_state'])  # plain data
    got = torch.rand(3), np.random.rand(3), random.random()
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]
