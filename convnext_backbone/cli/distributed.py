"""Distributed runs of our tools: torchrun on a machine without a GPU, and a clean exit.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and mmdet/mmseg configs ask for NCCL, so
``torchrun`` on a machine without a GPU crashes before training; and the Runner hands
``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which torch refuses for a CPU model. Only a
launcher meets this, so only our launchers change it: :func:`cpu_distributed` (called by
``tools/train.py`` and ``tools/test.py`` for ``--launcher`` other than none) runs NCCL requests on
gloo (with a notice), skips ``set_device`` and gives DDP no device ids, while no CUDA device is
there; it returns the function that undoes this. With a GPU nothing changes. Importing
convnext_backbone changes none of it.

:func:`check_launcher` comes first: ``--launcher pytorch`` in a process that torchrun did not
start (no ``RANK`` ...) is one line saying how to start it, instead of mmengine's
``KeyError: 'RANK'`` from inside the Runner. :func:`rank` tells which process of a run this is
before any process group exists (the work-dir lock is taken by rank 0 only).
"""
import contextlib
import logging
import os
import sys
from typing import Callable, Iterator

import torch

#: What each launcher's processes find in their environment (mmengine's ``init_dist`` reads them).
LAUNCHER_ENVIRONMENT = {
    'pytorch': ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
    'mpi': ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK'),
}
_STARTER = {'pytorch': 'torchrun', 'slurm': 'srun', 'mpi': 'mpirun'}


class LauncherError(RuntimeError):
    """``--launcher`` names a launcher that did not start this process."""


def check_launcher(launcher: str, tool: str = 'train') -> None:
    """:class:`LauncherError` when ``--launcher`` is not 'none' and this process lacks the
    environment that launcher gives its processes."""
    needed = LAUNCHER_ENVIRONMENT.get(launcher)
    if not needed:
        return
    missing = [name for name in needed if name not in os.environ]
    if not missing:
        return
    how = (f'tools/dist_{tool}.sh CONFIG NUM_PROCESSES [options] (or torchrun '
           f'--nproc-per-node NUM_PROCESSES tools/{tool}.py CONFIG --launcher pytorch)'
           if launcher == 'pytorch' else f'{_STARTER[launcher]} ... python tools/{tool}.py '
           f'CONFIG --launcher {launcher}')
    raise LauncherError(
        f'--launcher {launcher}: this process was not started by {_STARTER[launcher]} (no '
        f'{", ".join(missing)} in the environment). Start a distributed run with {how}; for a '
        'single process, leave --launcher out.')


def rank() -> int:
    """This process's global rank as its launcher set it (0 when not launched)."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        value = os.environ.get(name, '')
        if value.isdigit():
            return int(value)
    return 0


@contextlib.contextmanager
def _cuda_set_device_skipped() -> Iterator[None]:
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def cpu_distributed() -> Callable[[], None]:
    """Let mmengine's distributed setup run on CPU (gloo); returns the undo. No-op with CUDA."""
    if torch.cuda.is_available():
        return lambda: None
    import mmengine.dist as dist_package
    import mmengine.dist.utils as dist_utils
    import mmengine.runner.runner as runner_module
    from mmengine.model import MMDistributedDataParallel
    init_dist = dist_utils.init_dist
    ddp_init = MMDistributedDataParallel.__init__

    def init_dist_on_gloo(launcher, backend='nccl', init_backend='torch', **kwargs):
        if backend == 'nccl':
            from mmengine.logging import print_log
            print_log('No CUDA device: distributed backend nccl -> gloo.', logger='current')
            backend = 'gloo'
        with _cuda_set_device_skipped():
            return init_dist(launcher, backend=backend, init_backend=init_backend, **kwargs)

    def ddp_init_without_device_ids(self, module, *args, **kwargs):
        if all(p.device.type == 'cpu' for p in module.parameters()):
            kwargs['device_ids'] = None
        ddp_init(self, module, *args, **kwargs)

    modules = (dist_utils, dist_package, runner_module)
    for module in modules:
        module.init_dist = init_dist_on_gloo
    MMDistributedDataParallel.__init__ = ddp_init_without_device_ids

    def undo() -> None:
        for module in modules:
            module.init_dist = init_dist
        MMDistributedDataParallel.__init__ = ddp_init
    return undo


def end_distributed_worker() -> None:
    """After a distributed run has finished its work: every rank meets, the process group is torn
    down, logs and output are flushed, and the worker exits at once (``os._exit(0)``).

    Why: a finished torchrun worker on gloo (CPU) sometimes aborted during interpreter shutdown
    ("terminate called without an active exception", exit -6) after training, validation and
    the last checkpoint were done, and torchrun then reported the whole run as failed. Seen 3
    times in about 30 two-process runs here, also when the process group had been destroyed by
    an exit handler, so the crash is in C++ teardown after Python's; exiting without that
    teardown avoids it. Outside a distributed run this does nothing and the tool returns.
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
