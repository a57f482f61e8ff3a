"""torchrun with 2 processes trains an mmengine Runner on CPU (gloo), through our launchers' CPU
fix (convnext_backbone.cli.distributed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import free_port

pytestmark = pytest.mark.slow  # end-to-end runs (make test-fast skips them)

HERE = Path(__file__).parent



def torchrun(nproc, script, *args):
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
           '--master_addr=127.0.0.1', f'--master_port={free_port()}', str(script), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_two_process_gloo_training_completes_with_synced_weights(tmp_path):
    proc = torchrun(2, HERE / 'dist_toy_train.py', tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # 16 samples / (2 ranks x batch 2) = 4 iterations an epoch, 2 epochs
    for rank in (0, 1):
        assert f'rank {rank} of 2 finished 8 iterations on gloo' in proc.stdout
    w0, w1 = (torch.load(tmp_path / f'final_rank{r}.pt') for r in (0, 1))
    for key in w0:
        torch.testing.assert_close(w0[key], w1[key])
    assert (tmp_path / 'epoch_2.pth').is_file()


END_WORKER = '''
import logging, sys, torch.distributed as dist
from convnext_backbone.cli import distributed
distributed.end_distributed_worker()  # not distributed yet: returns
dist.init_process_group('gloo')
rank = dist.get_rank()
log = logging.getLogger('worker')
log.addHandler(logging.FileHandler(sys.argv[1] + f'/rank{rank}.log'))
log.warning('last words of rank %d', rank)
print(f'rank {rank} done', end='')  # no newline: only an explicit flush writes it
distributed.end_distributed_worker()
print('not reached')
'''


def test_end_distributed_worker_flushes_and_exits_zero(tmp_path):
    """Every rank of a finished run leaves with exit code 0, its log file and output written,
    the process group torn down first, and nothing after the call runs."""
    script = tmp_path / 'end_worker.py'
    script.write_text(END_WORKER)
    proc = torchrun(2, script, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'rank 0 done' in proc.stdout and 'rank 1 done' in proc.stdout
    assert 'not reached' not in proc.stdout
    for rank in (0, 1):
        assert (tmp_path / f'rank{rank}.log').read_text() == f'last words of rank {rank}\n'
