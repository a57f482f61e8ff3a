"""Shared pieces of the reliability tests: tiny deterministic toy trainings through our tools,
killed on purpose (see faults.py), and checkpoint comparison."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from conftest import REPO, run_tool

TOY_SEG = 'configs/toy/upernet_convnext_toy_ade20k.py'
TRAIN = REPO / 'tools' / 'train.py'
FAULTS = Path(__file__).with_name('faults.py')


def seg_options(toy_root, max_iters, interval=2, *extra):
    """The toy UperNet on the generated 4-image ADE set: batch 2, no validation, a checkpoint
    every ``interval`` iterations (the toy config keeps only the newest), seed 0, deterministic."""
    ade = toy_root / 'ade' / 'ADEChallengeData2016'
    return [f'train_dataloader.dataset.data_root={ade}', 'train_dataloader.batch_size=2',
            f'train_cfg.max_iters={max_iters}', 'val_cfg=None', 'val_dataloader=None',
            'val_evaluator=None', f'default_hooks.checkpoint.interval={interval}',
            'default_hooks.logger.interval=1', 'randomness.seed=0',
            'randomness.deterministic=True', *extra]


def train(work_dir, options, *flags, check=True):
    """``python tools/train.py TOY_SEG --work-dir DIR [flags] --cfg-options ...``."""
    return run_tool(TRAIN, TOY_SEG, '--work-dir', work_dir, *flags, '--cfg-options', *options,
                    check=check)


@contextlib.contextmanager
def paused_run(work_dir, options, fault, timeout=300):
    """Start tools/train.py under ``faults.py FAULT`` and wait until it reaches the fault;
    yields ``(process, output file)`` (the output goes to a file: a pipe nobody reads could
    block the run). A process still running at the end is killed."""
    marker = Path(work_dir).parent / f'{Path(work_dir).name}.fault'
    output = Path(work_dir).parent / f'{Path(work_dir).name}.out'
    cmd = [sys.executable, FAULTS, '--marker', marker, *fault, '--', TRAIN, TOY_SEG,
           '--work-dir', work_dir, '--cfg-options', *options]
    with open(output, 'w') as out:
        proc = subprocess.Popen([str(c) for c in cmd], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f'the run ended (exit {proc.returncode}) before the fault:'
                                     f'\n{output.read_text()[-4000:]}')
            if time.monotonic() > deadline:
                raise AssertionError('the run did not reach the fault in time')
            time.sleep(0.05)
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def train_until_killed(work_dir, options, fault, timeout=300):
    """Run tools/train.py under ``faults.py FAULT``; SIGKILL it once it reaches the fault.
    Returns the run's output."""
    with paused_run(work_dir, options, fault, timeout) as (proc, output):
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        return output.read_text()


def train_until_interrupted(work_dir, options, fault, timeout=300):
    """As :func:`train_until_killed`, with Ctrl-C (SIGINT) instead; returns
    ``(exit status, output)``."""
    with paused_run(work_dir, options, fault, timeout) as (proc, output):
        os.kill(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=120), output.read_text()
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGUSR1)  # faults.py prints where it is
            time.sleep(2)
            raise AssertionError('the run did not end within 120 s of Ctrl-C; its stacks:\n'
                                 + output.read_text()[-6000:]) from None


def load(path):
    """A checkpoint written by our runs (trusted: written by our own tools)."""
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_same_training_state(path_a, path_b):
    """Same weights (and buffers) and same optimizer state, bit for bit."""
    a, b = load(path_a), load(path_b)
    assert a['meta']['iter'] == b['meta']['iter']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    differ = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k],
                                                           b['state_dict'][k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
    for sa, sb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        for key in sa:
            if isinstance(sa[key], torch.Tensor):
                assert torch.equal(sa[key], sb[key]), key
