"""How a tool's failure is told: one ``error: ...`` line, for any exception.

* :data:`USER_ERRORS`: our own error classes. Each message names the problem and the fix, so it
  is printed as it is (a message of several lines joined into one).
* Anything else (a config that does not parse or run, a ``_base_`` or ``custom_imports`` that
  cannot be read, a host class refusing an argument, a bug of ours) is told as
  ``error: <where>: <ExceptionType>: <message>``. *Where* is read off the traceback: the config
  file and line when the failure is in a config being read or executed (mmengine reads configs
  through a temporary copy, so a Python syntax error names ``<unknown>``; the file is found from
  mmengine's own frames and parsed again to name its line), otherwise the file and line that
  raised. A long message keeps its first line; a chained cause is named.
* A tool that catches a config's failure and raises its own error (losing the file and line)
  is described by the config's failure, found in the exception's context.
* An interrupt that a library turned into another exception (mmengine's config formatter catches
  everything, Ctrl-C included, and raises "SyntaxError: Failed to format the config file") is
  found through the exception chain: :func:`interrupt_in`.
"""
import os
import os.path as osp
import site
import sys
import sysconfig
from typing import List, Optional, Tuple

from ..checkpoint.errors import CheckpointError
from ..config_schema import ConfigValueError
from ..engine.checkpoint_hook import WorkDirInUseError
from ..engine.cpu_autocast import CPUAutocastError
from ..engine.hooks import NonFiniteLossError
from ..engine.layer_decay import LayerDecayConfigError
from ..engine.model_fit import ModelFitError
from ..models.convnext import ConvNeXtConfigError, ConvNeXtInputError
from .checks import DatasetNotFoundError, UnknownTypeError, WorkDirError
from .config import HookOptionError
from .data_checks import DataError
from .distributed import LauncherError
from .late_failures import LateFailureError
from .results import ResultsExistError

#: Errors our tools print as a single ``error: ...`` line of their own text: each message names
#: the problem and the fix. (mmengine's registry re-raises build errors as ``type(e)(...)``, so
#: the backbone's classes survive being built inside a detector; the layer-decay constructor's
#: errors come from inside the Runner's optimizer build.)
USER_ERRORS = (FileNotFoundError, UnknownTypeError, CheckpointError, NonFiniteLossError,
               DatasetNotFoundError, WorkDirError, WorkDirInUseError, DataError,
               ConvNeXtConfigError, ConvNeXtInputError, HookOptionError, LayerDecayConfigError,
               ModelFitError, LauncherError, CPUAutocastError, ConfigValueError,
               ResultsExistError, LateFailureError)

#: How long the text of an unexpected exception may get before only its first line is kept.
MESSAGE_LIMIT = 400


def error_line(error: BaseException) -> str:
    """The ``error: ...`` line a tool prints for a user error (a message of several lines, such
    as a checkpoint report, is joined into one)."""
    return f'error: {_joined(str(error))}'


def _joined(text: str) -> str:
    return ' '.join(line.strip() for line in text.splitlines() if line.strip())


def interrupt_in(error: BaseException) -> Optional[KeyboardInterrupt]:
    """The KeyboardInterrupt behind ``error`` (itself, or its cause or context), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


# Where it happened ------------------------------------------------------------------------------

def _frames(error: BaseException) -> List[Tuple[object, int]]:
    """``(frame, line)`` of the traceback, outermost first."""
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _is_mmengine_config_code(filename: str) -> bool:
    return osp.normpath(filename).endswith(osp.join('mmengine', 'config', 'config.py'))


def configs_being_read(error: BaseException) -> List[str]:
    """The config files mmengine was reading when ``error`` was raised, outermost first (a
    config, then the ``_base_`` file it was reading, ...), as absolute paths."""
    found: List[str] = []
    for frame, _ in _frames(error):
        if not _is_mmengine_config_code(frame.f_code.co_filename):
            continue
        name = frame.f_locals.get('filename')
        if isinstance(name, (str, os.PathLike)):
            path = osp.abspath(osp.expanduser(os.fspath(name)))
            if path not in found:
                found.append(path)
    return found


def _config_line(error: BaseException, configs: List[str]) -> Optional[Tuple[str, int]]:
    """The innermost line of a config file's own code in the traceback (configs are executed
    under their real file names)."""
    located = None
    for frame, line in _frames(error):
        if osp.abspath(frame.f_code.co_filename) in configs:
            located = (osp.abspath(frame.f_code.co_filename), line)
    return located


def _syntax_location(error: SyntaxError, path: str) -> Tuple[int, Optional[int], str, str]:
    """Line, column, message and source text of the syntax error in ``path`` (parsed again
    under its own name; mmengine parsed a temporary copy)."""
    try:
        with open(path, encoding='utf-8') as f:
            compile(f.read(), path, 'exec', dont_inherit=True)
    except SyntaxError as again:
        return again.lineno or 0, again.offset, again.msg, (again.text or '').strip()
    except (OSError, ValueError):
        pass
    return error.lineno or 0, error.offset, error.msg, (error.text or '').strip()


def shown_path(path: str) -> str:
    """``path`` as a user reads it: relative to the current folder when inside it, relative to
    the site-packages folder for installed packages, else absolute."""
    path = osp.abspath(path)
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        return osp.relpath(path, cwd)
    roots = [p for p in (*site.getsitepackages(), site.getusersitepackages(), *sys.path)
             if isinstance(p, str) and p and osp.isabs(p)]
    for root in sorted(roots, key=len, reverse=True):
        if path.startswith(osp.abspath(root) + os.sep):
            return osp.relpath(path, root)
    return path


def _message(error: BaseException) -> str:
    """The exception's text on one line: all of it when short, else its first line."""
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        text = error.args[0]  # KeyError's str() quotes the whole message
    joined = _joined(text)
    if len(joined) <= MESSAGE_LIMIT:
        return joined
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0][:MESSAGE_LIMIT]
    if any('Traceback (most recent call last)' in line for line in lines):
        return f'{first} ... {lines[-1][:MESSAGE_LIMIT]}'  # e.g. a DataLoader worker's error
    return f'{first} ...'


def _cause(error: BaseException) -> str:
    """The root of the exceptions ``error`` was raised from (or while handling, unless that was
    suppressed), named in a few words: often the real reason (No module named 'x')."""
    chain, seen = [], {id(error)}
    inner = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    while inner is not None and id(inner) not in seen:
        chain.append(inner)
        seen.add(id(inner))
        inner = inner.__cause__ or (None if inner.__suppress_context__ else inner.__context__)
    if not chain:
        return ''
    root = chain[-1]
    return f'; caused by {type(root).__name__}: {_message(root)}'


def _is_python_itself(filename: str) -> bool:
    if filename.startswith('<'):  # <frozen os>, <string>
        return True
    stdlib = [sysconfig.get_paths()[key] for key in ('stdlib', 'platstdlib')]
    return any(osp.abspath(filename).startswith(osp.abspath(p) + os.sep) for p in stdlib) \
        and 'site-packages' not in filename


def _raised_at(error: BaseException) -> Optional[str]:
    """The innermost frame of the traceback outside Python's own library (``os.makedirs``
    raising says less than the line that called it)."""
    frames = [(f, line) for f, line in _frames(error)
              if not _is_python_itself(f.f_code.co_filename)]
    if not frames:
        return None
    frame, line = frames[-1]
    return f'{shown_path(frame.f_code.co_filename)}:{line}'


def _wrapped_config_failure(error: BaseException) -> Optional[BaseException]:
    """The exception ``error`` was raised while handling, when that one happened while a config
    was being read and ``error`` itself did not (a tool that catches config errors and raises
    its own, with the config's file and line lost on the way)."""
    if configs_being_read(error):
        return None
    inner = error.__cause__ or error.__context__
    while inner is not None:
        if isinstance(inner, Exception) and configs_being_read(inner):
            return inner
        inner = inner.__cause__ or inner.__context__
    return None


def described(error: BaseException) -> BaseException:
    """The exception the line tells of: ``error``, or the config failure it wraps."""
    return _wrapped_config_failure(error) or error


def describe(error: BaseException, user_errors: tuple = USER_ERRORS) -> str:
    """The one ``error: ...`` line for ``error`` (see the module's docstring)."""
    error = described(error)
    configs = [path for path in configs_being_read(error) if osp.isfile(path)]
    reading = f' (reading {" -> ".join(shown_path(p) for p in configs)})' if configs else ''
    if isinstance(error, user_errors):
        text = _joined(str(error))
        mentioned = all(shown_path(p) in text or p in text for p in configs)
        return f'error: {text}{"" if mentioned else reading}'
    if isinstance(error, SyntaxError) and configs:
        path = configs[-1]
        line, column, msg, source = _syntax_location(error, path)
        at = f', column {column}' if column else ''
        return (f'error: {shown_path(path)}:{line}: the config is not valid Python ({msg}'
                f'{at}): {source}')
    located = _config_line(error, configs)
    kind = type(error).__name__
    if located:
        return (f'error: {shown_path(located[0])}:{located[1]}: {kind}: {_message(error)}'
                f'{_cause(error)}')
    where = reading or (f' (raised at {_raised_at(error)})' if _raised_at(error) else '')
    return f'error: {kind}: {_message(error)}{_cause(error)}{where}'


def describe_safely(error: BaseException, user_errors: tuple = USER_ERRORS) -> str:
    """:func:`describe`, which must not fail itself: if it does, the plainest line."""
    try:
        return describe(error, user_errors)
    except Exception:  # a frame or message we could not read: still one line
        return f'error: {type(error).__name__}: {_joined(str(error))[:MESSAGE_LIMIT]}'
