"""A NaN/inf loss stops training with a clear message naming the iteration (before that
iteration is checkpointed); ``--allow-nonfinite`` lets it continue with a warning."""
import math
from types import SimpleNamespace

import pytest
import torch

from convnext_backbone.engine.hooks import NonFiniteLossError, NonFiniteLossHook

from toy_runs import seg_options, train

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

# lr 1e30: iteration 1 is fine, its update blows the weights up, iteration 2's loss is NaN.
EXPLODE = 'optim_wrapper.optimizer.lr=1e30'


def test_nan_loss_stops_training_naming_the_iteration(toy_root, tmp_path):
    proc = train(tmp_path, seg_options(toy_root, 3, 1, EXPLODE), check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert '\nerror: Non-finite loss at iteration 2: loss=nan' in '\n' + err, err[-3000:]
    assert f'the last checkpoint is {tmp_path / "iter_1.pth"}' in err
    assert 'optim_wrapper.clip_grad' in err and '--allow-nonfinite' in err  # the fixes
    assert 'Traceback' not in err
    assert (tmp_path / 'iter_1.pth').is_file() and not (tmp_path / 'iter_2.pth').exists()


def test_allow_nonfinite_keeps_training_with_a_warning(toy_root, tmp_path):
    proc = train(tmp_path, seg_options(toy_root, 3, 3, EXPLODE), '--allow-nonfinite')
    out = proc.stdout + proc.stderr
    assert 'Non-finite loss at iteration 2: loss=nan' in out
    assert 'Training continues' in out
    assert 'Non-finite loss at iteration 3 (2 iterations so far' in out
    assert (tmp_path / 'iter_3.pth').is_file()


# The hook alone ----------------------------------------------------------------------------------

def fake_runner(iteration=6):
    hub = SimpleNamespace(get_info=lambda key: '/work/iter_4.pth')
    return SimpleNamespace(iter=iteration - 1, epoch=0, message_hub=hub, train_loop=None)


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_hook_names_iteration_losses_and_images(value):
    batch = dict(data_samples=[SimpleNamespace(img_path=p) for p in ('a.jpg', 'b.jpg')])
    outputs = dict(loss=torch.tensor(value), loss_cls=torch.tensor(value),
                   loss_bbox=torch.tensor(0.5), acc=torch.tensor(math.nan))
    with pytest.raises(NonFiniteLossError) as error:
        NonFiniteLossHook().after_train_iter(fake_runner(6), 5, batch, outputs)
    message = str(error.value)
    assert message.startswith(f'Non-finite loss at iteration 6: loss={value}, loss_cls={value}.')
    assert 'loss_bbox' not in message.splitlines()[0] and 'acc' not in message.splitlines()[0]
    assert 'a.jpg, b.jpg' in message and '/work/iter_4.pth' in message


def test_hook_ignores_finite_losses_and_rejects_unknown_actions():
    NonFiniteLossHook().after_train_iter(fake_runner(), 0, {}, dict(loss=torch.tensor(1.0)))
    with pytest.raises(ValueError, match="one of \\['raise', 'warn'\\]"):
        NonFiniteLossHook(action='ignore')


def _rank_main(rank, init_file, results):
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                                         world_size=2)
    try:
        loss = torch.tensor(math.nan if rank == 1 else 1.0)   # only rank 1 sees the NaN
        NonFiniteLossHook().after_train_iter(fake_runner(3), 2, {}, dict(loss=loss))
        results[rank] = 'went on'
    except NonFiniteLossError as error:
        results[rank] = str(error).splitlines()[0]
    finally:
        torch.distributed.destroy_process_group()


def test_every_process_of_a_distributed_run_stops_together(tmp_path):
    """Otherwise the processes that saw finite losses would wait forever in the next
    all-reduce for the one that stopped."""
    import torch.multiprocessing as mp
    results = mp.Manager().dict()
    mp.spawn(_rank_main, args=(str(tmp_path / 'init'), results), nprocs=2, join=True)
    assert results[1].startswith('Non-finite loss at iteration 3: loss=nan')
    assert results[0] == ('Non-finite loss at iteration 3 on another process of this '
                          'distributed run (its log names the losses and images); every '
                          'process stops.')
