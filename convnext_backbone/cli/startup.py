"""What every tool does between its prepared config and mmengine's Runner, as one call.

:func:`started` holds the work dir (``work_dir.claim_work_dir``: a lock, and a refused start
leaves the folder as it was), refuses a fresh training run into an earlier run's checkpoints,
runs :func:`check_inputs` and, under a launcher, sets up distributed runs on machines without a
GPU; the tool builds its Runner inside it. ``tools/train.py`` and ``tools/test.py`` each wrap
their config preparation and this in one ``startup(argv)`` context manager, which is the whole
of what the tool does before the Runner: the tests of valid and mistaken runs call that, in
process.

:func:`check_inputs` is the order of the input checks: the loaders' settings and the datasets'
annotation files (``checks.check_datasets``), then the data itself as the host reads it
(``data_checks.check_data``), then what would fail at the first validation or checkpoint
(``late_failures``). Before the work dir is claimed, the values of our components in the config
are checked against their schemas (``config_values``).
"""
import contextlib
from typing import Iterator, Sequence

from mmengine.config import Config

from . import checks, config_values, data_checks, distributed, late_failures, work_dir


def check_inputs(cfg: Config, loaders: Sequence[str]) -> None:
    """The input checks of ``loaders``, in their order (module docstring)."""
    checks.check_datasets(cfg, loaders)
    data_checks.check_data(cfg, loaders)
    late_failures.check_late_failures(cfg, loaders)


@contextlib.contextmanager
def started(cfg: Config, mode: str, launcher: str, loaders: Sequence[str]) -> Iterator[Config]:
    """Hold ``cfg.work_dir`` for a ``mode`` ('train'/'test') run and check everything the run
    reads; yields ``cfg`` for the Runner (module docstring)."""
    config_values.check_config_values(cfg)
    first = launcher == 'none' or distributed.rank() == 0
    with work_dir.claim_work_dir(cfg.work_dir, mode, lock=first):
        if mode == 'train':
            checks.check_fresh_run(cfg)
        check_inputs(cfg, loaders)
        if launcher != 'none':
            distributed.cpu_distributed()
        yield cfg
