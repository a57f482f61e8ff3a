"""Shared fixtures: generated toy datasets (no download) and a quiet, deterministic torch."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(min(2, torch.get_num_threads()))


def run_tool(*args, check=True, cwd=REPO, env=None, timeout=600):
    """Run ``python tools/...`` of this repo and return the CompletedProcess."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, timeout=timeout,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A tiny toy COCO set and a tiny toy ADE20K set, generated once per session."""
    root = tmp_path_factory.mktemp('toy')
    run_tool(REPO / 'tools' / 'make_toy_data.py', '--root', root, '--num-train', 4,
             '--num-val', 2, '--size', 64)
    return root
