"""The one way every tool ends: :func:`run_tool` runs a tool's ``main`` and turns whatever it
raises into one line.

* Any exception: one ``error: ...`` line (``errors.describe``: our errors' own text; for any other
  exception its type, text and where: the config file and line, or the code that raised), exit
  status 1, no traceback. The traceback is printed before that line with ``--debug`` (any
  tool, any position) or ``CONVNEXT_DEBUG=1``; when a run fails after its first iteration, it is
  also appended to the run's log file, which the line names.
* Ctrl-C (also when a library turned it into another exception): one line saying where the run
  was and what to do (``progress.interrupted_line``), exit status 130.
* ``SystemExit`` (argparse's usage errors, a tool's own exit status) passes through; a ``main``
  that returns a non-zero int exits with it.
"""
import os
import sys
import traceback
from typing import Callable

from . import progress
from .errors import USER_ERRORS, describe_safely, described, interrupt_in

DEBUG_ENV = 'CONVNEXT_DEBUG'
DEBUG_FLAG = '--debug'
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a process stopped by Ctrl-C


def debug_requested() -> bool:
    """``--debug`` on the command line (taken out of ``sys.argv``) or ``CONVNEXT_DEBUG`` set."""
    found = DEBUG_FLAG in sys.argv[1:]
    if found:
        sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a != DEBUG_FLAG]
    return found or os.environ.get(DEBUG_ENV, '').lower() not in ('', '0', 'false', 'no')


def _keep_traceback(error: BaseException) -> str:
    """Append the traceback to the run's log file when the run had started; returns the file's
    name ('' when there is none)."""
    run = progress.current()
    if not (run.started and run.log_file):
        return ''
    try:
        with open(run.log_file, 'a') as f:
            f.write('\n' + ''.join(traceback.format_exception(error)))
    except OSError:
        return ''
    return run.log_file


def report_failure(error: BaseException, user_errors: tuple = USER_ERRORS,
                   debug: bool = False) -> int:
    """Print the one line for ``error`` (the traceback first when ``debug``); return the exit
    status."""
    sys.stdout.flush()
    if debug:
        traceback.print_exception(error)
    if interrupt_in(error) is not None:
        try:
            line = progress.interrupted_line()
        except Exception:  # the work dir unreadable now, say: still one line
            line = 'interrupted (Ctrl-C)'
        print(line, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    line = describe_safely(error, user_errors)
    if not isinstance(described(error), user_errors) and not debug:
        kept = _keep_traceback(error)
        line += (f' (traceback in {kept})' if kept else
                 f' (for the traceback: {DEBUG_FLAG} or {DEBUG_ENV}=1)')
    print(line, file=sys.stderr, flush=True)
    return EXIT_ERROR


def run_tool(main: Callable[[], object], extra_errors: tuple = ()) -> None:
    """Call a tool's ``main`` (see the module's docstring); ``extra_errors``: more classes whose
    text is printed as it is."""
    debug = debug_requested()
    try:
        result = main()
    except SystemExit:
        raise
    except BaseException as error:  # Ctrl-C too: one line, exit 130
        sys.exit(report_failure(error, USER_ERRORS + tuple(extra_errors), debug))
    if isinstance(result, int) and not isinstance(result, bool) and result:
        sys.exit(result)
