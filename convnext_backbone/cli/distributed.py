"""Distributed runs of our tools: torchrun on a machine without a GPU, and a clean exit.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and mmdet/mmseg configs ask for NCCL, so
``torchrun`` on a machine without a GPU crashes before training; and the Runner hands
``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which torch refuses for a CPU model. Only a
launcher meets this, so only our launchers change it: :func:`cpu_distributed` (called by
``tools/train.py`` and ``tools/test.py`` for ``--launcher`` other than none) runs NCCL requests on
gloo (with a notice), skips ``set_device`` and gives DDP no device ids, while no CUDA device is
there; it returns the function that undoes this. With a GPU nothing changes. Importing
convnext_backbone changes none of it.
"""
import contextlib
import logging
import os
import sys
from typing import Callable, Iterator

import torch


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
