"""What our command-line tools share: their common arguments, how they prepare a config for
mmengine's Runner, the checks they run on user input before anything is built, and distributed
runs on machines without a GPU. The scripts in ``tools/`` are thin command lines over these.

* ``arguments``   - the options every tool spells the same way (config, --work-dir,
  --cfg-options, --launcher, --trust-checkpoint), parsed with argparse's own errors.
* ``config``      - load a config and prepare it (work dir, AMP on CPU, denormals, --resume).
* ``checks``      - type names, dataset folders and the work dir, checked before the Runner.
* ``data_checks`` - the data itself (annotation files, images, classes vs heads), before the
  model is built.
* ``distributed`` - torchrun on CPU (gloo) for our tools only; a clean exit of finished workers.
* :func:`run_tool` - runs a tool's ``main`` and turns the errors in :data:`USER_ERRORS` into one
  ``error: ...`` line (no traceback): each of them names the problem and the fix.
"""
import sys
from typing import Callable

from ..checkpoint.errors import CheckpointError
from ..engine.checkpoint_hook import WorkDirInUseError
from ..engine.cpu_autocast import CPUAutocastError
from ..engine.hooks import NonFiniteLossError
from ..engine.layer_decay import LayerDecayConfigError
from ..models.convnext import ConvNeXtConfigError, ConvNeXtInputError
from .checks import DatasetNotFoundError, UnknownTypeError, WorkDirError
from .config import HookOptionError
from .data_checks import DataError

#: Errors our tools print as a single ``error: ...`` line: each message names the problem and
#: the fix, so a traceback would only hide it. (mmengine's registry re-raises build errors as
#: ``type(e)(...)``, so the backbone's classes survive being built inside a detector; the
#: layer-decay constructor's errors come from inside the Runner's optimizer build.)
USER_ERRORS = (FileNotFoundError, UnknownTypeError, CheckpointError, NonFiniteLossError,
               DatasetNotFoundError, WorkDirError, WorkDirInUseError, DataError,
               ConvNeXtConfigError, ConvNeXtInputError, HookOptionError, LayerDecayConfigError,
               CPUAutocastError)


def error_line(error: BaseException) -> str:
    """The ``error: ...`` line a tool prints for a user error (a message of several lines, such
    as a checkpoint report, is joined into one)."""
    text = ' '.join(line.strip() for line in str(error).splitlines() if line.strip())
    return f'error: {text}'


def run_tool(main: Callable[[], object], extra_errors: tuple = ()) -> None:
    """Call a tool's ``main``; a user error ends the process with one ``error:`` line."""
    try:
        main()
    except (*USER_ERRORS, *extra_errors) as error:
        sys.exit(error_line(error))


__all__ = ['USER_ERRORS', 'run_tool', 'error_line', 'DatasetNotFoundError', 'UnknownTypeError',
           'WorkDirError', 'DataError']
