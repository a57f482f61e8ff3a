"""Training hooks for reliable long runs: stop on a NaN/inf loss, resume bit-exactly.

Both are registered in ``convnext_backbone.registry.HOOKS`` and named by our configs' base
runtimes (configs/_base_/runtime/), so our tools and mmdet's/mmseg's own tools get them with our
configs. Any other config gets them by naming them::

    custom_imports = dict(imports=['convnext_backbone'], allow_failed_imports=False)
    custom_hooks = [dict(type='convnext_backbone.NonFiniteLossHook'),
                    dict(type='convnext_backbone.RNGStateHook')]

``NonFiniteLossHook`` checks the losses of every training iteration. A NaN or inf loss raises
:class:`NonFiniteLossError`, naming the iteration, the non-finite losses, the batch's images and
the last checkpoint, before that iteration can be logged as normal or checkpointed (the hook runs
ahead of mmengine's CheckpointHook). ``action='warn'`` (``tools/train.py --allow-nonfinite``)
logs the same message and lets training go on.

``RNGStateHook`` makes ``--resume`` continue a run exactly where it stopped. mmengine's resume
restores the model, optimizer, schedulers and counters, then seeds the random generators again
from ``randomness.seed``: a resumed run draws the random numbers of a fresh run (data
augmentation, drop path, RoI sampling) instead of those the interrupted run would have drawn
next. This hook stores the torch (and CUDA), numpy and Python ``random`` states in every
checkpoint (``checkpoint['rng_state']``, plain tensors, ints and lists: safe to load) and puts
them back right before the resumed run fetches its first new batch: for an iteration-based loop
after mmengine has replayed (and discarded) the batches already trained, for an epoch-based loop
before the next epoch's data loader starts. It also keeps validation from consuming the training
streams (states are saved before validation and restored after it), so where validation happens
never changes the training randomness. With ``randomness=dict(seed=..., deterministic=True)`` and
``num_workers=0`` an interrupted and resumed run ends with the same weights as an uninterrupted
one (tests/reliability/test_interrupted_training.py). Limits: random numbers drawn inside data
loader worker processes are not in the main process, so with ``num_workers > 0`` an
iteration-based resume (and any resume with persistent workers) replays augmentation from the
workers' seeds instead; a distributed run restores nothing (only rank 0 writes checkpoints) and
keeps mmengine's reseeding.
"""
import logging
import math
import random
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..config_schema import Schema, choice
from ..registry import HOOKS

RNG_STATE_KEY = 'rng_state'


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or inf; the message says where and what to do."""


def _as_float(value: Any) -> Optional[float]:
    """A logged loss as one float (NaN and inf survive the mean); None for non-numbers."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _batch_images(data_batch, limit: int = 4) -> str:
    """Image paths of the batch's samples (mmdet/mmseg data samples carry ``img_path``)."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    paths = [str(p) for p in (getattr(s, 'img_path', None) for s in samples or ()) if p]
    more = f', ... ({len(paths)} images)' if len(paths) > limit else ''
    return ', '.join(paths[:limit]) + more


def _anywhere(flag: bool) -> bool:
    """Whether ``flag`` holds on any process (all stop together, none waits in a collective)."""
    from mmengine.dist import all_reduce, get_world_size
    if get_world_size() == 1:
        return flag
    total = torch.tensor([float(flag)])
    all_reduce(total, op='sum')
    return bool(total.item() > 0)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training (or warn) when a loss is NaN or inf; see the module docstring.

    Args:
        action: ``'raise'`` (default) raises :class:`NonFiniteLossError`; ``'warn'`` logs the
            same message as a warning (then one line per further non-finite iteration) and
            training goes on.

    Losses are the entries of the training step's outputs whose name contains ``'loss'``
    (mmengine's rule for what makes up the total loss), e.g. ``loss``, ``decode.loss_ce``.
    In a distributed run every process stops when any one sees a non-finite loss (one flag is
    all-reduced per iteration), so no process is left waiting for the others.
    """

    ACTIONS = ('raise', 'warn')
    priority = 'ABOVE_NORMAL'  # before the logger and checkpoint hooks of the same iteration

    @staticmethod
    def config_schema() -> Schema:
        """The config values this hook reads (checked by the tools before anything is built)."""
        return {'action': choice(NonFiniteLossHook.ACTIONS,
                                 about="'warn': tools/train.py --allow-nonfinite")}

    def __init__(self, action: str = 'raise') -> None:
        if action not in self.ACTIONS:
            raise ValueError(f'NonFiniteLossHook action must be one of {list(self.ACTIONS)}, '
                             f'got {action!r}.')
        self.action = action
        self._warned = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not isinstance(outputs, dict):
            return
        values = {name: _as_float(value) for name, value in outputs.items() if 'loss' in name}
        bad = {name: value for name, value in values.items()
               if value is not None and not math.isfinite(value)}
        if self.action == 'raise' and _anywhere(bool(bad)) and not bad:
            raise NonFiniteLossError(
                f'Non-finite loss at iteration {runner.iter + 1} on another process of this '
                'distributed run (its log names the losses and images); every process stops.')
        if not bad:
            return
        if self.action == 'raise':
            raise NonFiniteLossError(self.describe(runner, batch_idx, data_batch, bad))
        self._warned += 1
        message = self.describe(runner, batch_idx, data_batch, bad) if self._warned == 1 else (
            f'Non-finite loss at iteration {runner.iter + 1} ({self._warned} iterations so '
            'far; see the first warning).')
        print_log(message, logger='current', level=logging.WARNING)

    def describe(self, runner, batch_idx: int, data_batch, bad: Dict[str, float]) -> str:
        """The message: where, which losses, which images, the last checkpoint, the fixes."""
        from mmengine.runner import EpochBasedTrainLoop
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            try:
                per_epoch = len(runner.train_dataloader)
            except TypeError:
                per_epoch = '?'
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1}/{per_epoch})'
        losses = ', '.join(f'{name}={value}' for name, value in bad.items())
        lines = [f'Non-finite loss at {where}: {losses}.']
        images = _batch_images(data_batch)
        if images:
            lines.append(f'Images of this batch: {images}.')
        last = runner.message_hub.get_info('last_ckpt')
        if self.action == 'raise':
            lines.append('Training stopped before this iteration was checkpointed'
                         + (f'; the last checkpoint is {last} (continue from it with --resume '
                            'once the cause is fixed).' if last else '; no checkpoint was '
                            'written yet.'))
        else:
            lines.append('Training continues (NonFiniteLossHook action="warn", '
                         'tools/train.py --allow-nonfinite): the weights may now be garbage.')
        lines.append(
            'Usual causes: a learning rate too high for the batch size (lower '
            'optim_wrapper.optimizer.lr, lengthen the warmup, or clip gradients with '
            'optim_wrapper.clip_grad=dict(max_norm=1.0)); fp16 overflow (train in fp32 or '
            'use a dynamic loss scale); a bad annotation in the batch (empty/degenerate boxes '
            'or masks). To keep training anyway: tools/train.py --allow-nonfinite, or '
            "dict(type='convnext_backbone.NonFiniteLossHook', action='warn') in custom_hooks.")
        return '\n'.join(lines)


# ------------------------------------------------------------------------------- RNG states

def get_rng_state() -> Dict[str, Any]:
    """The torch (and CUDA), numpy and Python ``random`` states, as plain (safe) data."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {'torch': torch.get_rng_state(),
             'numpy': [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
             'random': list(random.getstate())}
    state['random'][1] = list(state['random'][1])
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Put back what :func:`get_rng_state` returned."""
    torch.set_rng_state(state['torch'].cpu())
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state['random']
    random.setstate((version, tuple(internal), gauss_next))
    cuda = state.get('cuda')
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class _RestoreAfterReplay:
    """Wraps an iteration-based loop's data iterator: lets mmengine replay ``skip`` batches
    (which uses random numbers), then restores the saved states just before the first new
    batch is fetched, and hands the loop its own iterator back."""

    def __init__(self, inner: Iterator, skip: int, restore: Callable[[], None],
                 unwrap: Callable[[], None]) -> None:
        self._inner, self._skip, self._restore, self._unwrap = inner, skip, restore, unwrap

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
        else:
            self._restore()
            self._unwrap()
        return next(self._inner)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the random generators' states in checkpoints; restore them on resume.

    See the module docstring. Runs after the other hooks (priority ``'LOWEST'``) so that the
    states it saves before validation and restores on resume are the training loop's own.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None   # {'state', 'epoch', 'iter'} on resume
        self._training_state: Optional[Dict[str, Any]] = None   # saved during validation

    # Checkpoints ------------------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RNG_STATE_KEY] = self._training_state or get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(RNG_STATE_KEY)
        meta = checkpoint.get('meta') or {}
        self._pending = None
        if state is None:
            return
        self._pending = dict(state=state, epoch=meta.get('epoch'), iter=meta.get('iter'))

    # Restore just before the first new batch -------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        pending, self._pending = self._pending, None
        # Only a resume restores: loading weights (load_from) leaves the counters at 0.
        if pending is None or (runner.epoch, runner.iter) != (pending['epoch'], pending['iter']) \
                or runner.iter == 0:
            return
        from mmengine.dist import get_world_size
        if get_world_size() > 1:
            print_log('RNGStateHook: distributed run, random states are not restored (only '
                      "rank 0's are in the checkpoint); mmengine reseeds every rank.",
                      logger='current')
            return
        loop = runner.train_loop
        from mmengine.runner import IterBasedTrainLoop
        if isinstance(loop, IterBasedTrainLoop) and runner.iter > 0:
            inner = loop.dataloader_iterator
            loop.dataloader_iterator = _RestoreAfterReplay(
                inner, runner.iter, lambda: set_rng_state(pending['state']),
                lambda: setattr(loop, 'dataloader_iterator', inner))
        else:
            set_rng_state(pending['state'])
        print_log(f'RNGStateHook: random states of iteration {runner.iter} restored: the '
                  'resumed run draws the random numbers the interrupted run would have drawn.',
                  logger='current')

    # Validation does not consume the training streams ----------------------------------------
    def before_val(self, runner) -> None:
        if self._is_training(runner):
            self._training_state = get_rng_state()

    def after_val(self, runner) -> None:
        if self._training_state is not None:
            set_rng_state(self._training_state)
            self._training_state = None

    @staticmethod
    def _is_training(runner) -> bool:
        """Whether a training loop exists (validation inside training, not a bare val())."""
        loop = getattr(runner, '_train_loop', None)
        return loop is not None and not isinstance(loop, dict)
