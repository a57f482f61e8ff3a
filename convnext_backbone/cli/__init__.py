"""What our command-line tools share: their common arguments, how they prepare a config for
mmengine's Runner, the checks they run on user input before anything is built, the Runner they
run, the work dir they hold, distributed runs on machines without a GPU, and how they end.
The scripts in ``tools/`` are thin command lines over these.

* ``arguments``   - the options every tool spells the same way (config, --work-dir,
  --cfg-options, --launcher, --trust-checkpoint, --debug), parsed with argparse's own errors.
* ``config``      - load a config and prepare it (work dir, AMP on CPU, denormals, --resume).
* ``checks``      - type names, dataset folders and the work dir, checked before the Runner.
* ``data_checks`` - the data itself (annotation files, images, classes vs heads), before the
  model is built, read the way the host reads it (``data.host_paths``).
* ``startup``     - the checks in their order and the work dir held, as one call around the
  Runner; each tool's ``startup(argv)`` is everything it does before the Runner.
* ``distributed`` - the launcher's environment checked; torchrun on CPU (gloo) for our tools
  only; a clean exit of finished workers.
* ``work_dir``    - one run per work dir (a lock), and a refused start leaves it as it was.
* ``runner``      - ``ToolRunner``: the config dump in the log file only, the model's parts
  checked to fit after the build, progress recorded.
* ``progress``    - where the run is (starting up, iteration N), for the lines below.
* ``errors``      - any exception as one ``error: ...`` line naming where (config file and line).
* ``entry``       - :func:`run_tool`: every tool's ``main`` runs in it; one line for any failure,
  exit 1; Ctrl-C one line, exit 130; tracebacks behind ``--debug`` / ``CONVNEXT_DEBUG=1``.
"""
from .checks import DatasetNotFoundError, UnknownTypeError, WorkDirError
from .data_checks import DataError
from .entry import run_tool
from .errors import USER_ERRORS, describe, error_line

__all__ = ['USER_ERRORS', 'run_tool', 'error_line', 'describe', 'DatasetNotFoundError',
           'UnknownTypeError', 'WorkDirError', 'DataError']
