"""convnext_backbone.cli.distributed: our launchers run mmengine's distributed setup on a machine
without a GPU (gloo); mmengine alone cannot, and importing the package changes nothing there."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import free_port

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

INIT_DIST = textwrap.dedent('''
    import sys, torch
    import convnext_backbone, mmengine.dist
    from convnext_backbone.cli.distributed import cpu_distributed
    if sys.argv[1] == 'fixed':
        undo = cpu_distributed()
    mmengine.dist.init_dist('pytorch')  # mmengine's default backend: nccl
    from mmengine.model import MMDistributedDataParallel
    ddp = MMDistributedDataParallel(module=torch.nn.Linear(2, 2), device_ids=[0])
    ddp(torch.ones(1, 2)).sum().backward()
    print('backend', torch.distributed.get_backend())
    if sys.argv[1] == 'fixed':
        undo()
        import mmengine.dist.utils as utils
        assert utils.init_dist.__module__ == 'mmengine.dist.utils'
        assert mmengine.dist.init_dist is utils.init_dist
        print('reverted')
''')


def run_single_rank(variant):
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(free_port()))
    return subprocess.run([sys.executable, '-c', INIT_DIST, variant], env=env, timeout=120,
                          capture_output=True, text=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix only acts without a GPU')
def test_init_dist_and_ddp_on_a_machine_without_gpu_only_through_our_launcher_fix():
    host = run_single_rank('host')
    assert host.returncode != 0  # torch.cuda.set_device / nccl without a GPU
    fixed = run_single_rank('fixed')
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert 'backend gloo' in fixed.stdout and 'reverted' in fixed.stdout
