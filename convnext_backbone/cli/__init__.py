"""What our command-line tools share: their common arguments, how they prepare a config for
mmengine's Runner, the checks they run on user input before anything is built, and distributed
runs on machines without a GPU. The scripts in ``tools/`` are thin command lines over these.

* ``arguments``   - the options every tool spells the same way (config, --work-dir,
  --cfg-options, --launcher, --trust-checkpoint), parsed with argparse's own errors.
* ``config``      - load a config and prepare it (work dir, AMP on CPU, denormals, --resume).
* ``checks``      - type names and datasets, checked before the Runner is built.
* ``distributed`` - torchrun on CPU (gloo) for our tools only; a clean exit of finished workers.
* :func:`run_tool` - runs a tool's ``main`` and turns the errors in :data:`USER_ERRORS` into one
  ``error: ...`` line (no traceback): each of them names the problem and the fix.
"""
import sys
from typing import Callable

from ..checkpoint.errors import CheckpointError
from ..engine.hooks import NonFiniteLossError
from .checks import DatasetNotFoundError, UnknownTypeError

#: Errors our tools print as a single ``error: ...`` line: each message names the problem and
#: the fix, so a traceback would only hide it.
USER_ERRORS = (FileNotFoundError, UnknownTypeError, CheckpointError, NonFiniteLossError,
               DatasetNotFoundError)


def run_tool(main: Callable[[], object], extra_errors: tuple = ()) -> None:
    """Call a tool's ``main``; a user error ends the process with one ``error:`` line."""
    try:
        main()
    except (*USER_ERRORS, *extra_errors) as error:
        sys.exit(f'error: {error}')


__all__ = ['USER_ERRORS', 'run_tool', 'DatasetNotFoundError', 'UnknownTypeError']
