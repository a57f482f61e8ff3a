"""``python tools/X.py ARGS`` for the tests, as a process of its own that starts in a fraction of
a second: forked from an interpreter that has already imported the stack.

A tool run in a fresh interpreter spends about 4.5 s of CPU importing torch, mmengine, mmcv,
mmdet and mmseg before it reads its first argument: on the suite's 2 cores, most of the time of
a test that runs a tool to see its one-line error. Here a server process (multiprocessing's
forkserver) imports those once per test process; each run is a child forked from it that
becomes the tool: its own process, pid and exit status, the tool file run as ``__main__`` with
its argv, working directory and environment, ``sys.path`` as a fresh ``python tools/X.py`` has
it, stdout and stderr captured from its file descriptors. What differs from a fresh interpreter
is only that those third-party modules are already imported. Our package is not preloaded (its
import applies the host fixes and reads their switch from the environment, in the child, as in a
fresh process).

A fresh interpreter is used instead where the start of the process is what is tested:
``fresh=True`` (each tool path keeps at least one such run: tests/reliability/
test_tool_failures.py), an environment that changes what the preloaded libraries read when they
load (threads, ISA caps, library paths), another interpreter than this one, or
``CONVNEXT_TEST_FRESH_TOOLS=1`` for the whole run.
"""
import functools
import io
import json
import multiprocessing
import os
import re
import runpy
import subprocess
import sys
import tempfile
from typing import Mapping, Optional, Sequence

#: Imported once by the server: what every tool imports before it does anything.
PRELOAD = ('torch', 'mmengine.runner', 'mmcv.ops', 'mmdet.models', 'mmdet.datasets',
           'mmdet.evaluation', 'mmseg.models', 'mmseg.datasets', 'mmseg.evaluation')
#: Environment variables that the preloaded libraries read when they load: a run that sets
#: them differently needs a fresh interpreter.
LOAD_TIME_ENV = re.compile(r'^(OMP_|MKL_|KMP_|GOMP_|ATEN_|ONEDNN_|DNNL_|LD_|PYTHON|TORCH_|CUDA_|'
                           r'NVIDIA_|MALLOC_)')
FRESH_ENV = 'CONVNEXT_TEST_FRESH_TOOLS'


def _load_time(env: Mapping[str, str]) -> dict:
    return {k: v for k, v in env.items() if LOAD_TIME_ENV.match(k)}


def needs_fresh(command: Sequence[str], env: Optional[Mapping[str, str]]) -> bool:
    """Whether ``command`` must run in a fresh interpreter (module docstring)."""
    if os.environ.get(FRESH_ENV) == '1' or len(command) < 2:
        return True
    if command[0] != sys.executable or not command[1].endswith('.py'):
        return True
    return env is not None and _load_time(env) != _load_time(os.environ)


@functools.lru_cache(maxsize=None)
def _fresh_sys_path(pythonpath: str) -> tuple:
    """``sys.path`` of a fresh interpreter after its script folder (which differs per run)."""
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else \
        {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    out = subprocess.run([sys.executable, '-c', 'import json, sys; print(json.dumps(sys.path))'],
                         env=env, capture_output=True, text=True, check=True).stdout
    return tuple(json.loads(out)[1:])


#: CPU seconds of the forked tool processes so far (theirs and their children's): a forked run
#: is not a child of the test process, so its time is not in the test process's own rusage.
cpu_seconds = 0.0


def _report_cpu(path: str) -> None:
    import resource
    used = sum(getattr(resource.getrusage(who), field) for who in
               (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ('ru_utime', 'ru_stime'))
    with open(path, 'w') as f:
        f.write(repr(used))


def _become_tool(script: str, argv: list, cwd: str, env: dict, sys_path: tuple,
                 out: str, err: str) -> None:
    """The child: the tool's process from here on."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = io.TextIOWrapper(open(1, 'wb', closefd=False), write_through=False)
    sys.stderr = io.TextIOWrapper(open(2, 'wb', closefd=False), line_buffering=True,
                                  errors='backslashreplace')
    sys.argv = [script, *argv]
    sys.path[:] = [os.path.dirname(os.path.abspath(script)), *sys_path]
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        _report_cpu(out + '.cpu')


@functools.lru_cache(maxsize=None)
def _context():
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload([*PRELOAD, __name__])
    return context


def run(command: Sequence[str], cwd, env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None, fresh: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run(command, cwd=cwd, env=env, timeout=timeout, capture_output=True,
    text=True)``, forked from the preloaded server unless the run needs a fresh interpreter."""
    command = [str(c) for c in command]
    if fresh or needs_fresh(command, env):
        return subprocess.run(command, cwd=cwd, env=env, timeout=timeout, capture_output=True,
                              text=True)
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix='tool-run-') as folder:
        out, err = os.path.join(folder, 'stdout'), os.path.join(folder, 'stderr')
        for path in (out, err):
            open(path, 'w').close()
        process = _context().Process(target=_become_tool, args=(
            command[1], command[2:], str(cwd), env, _fresh_sys_path(env.get('PYTHONPATH', '')),
            out, err))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout, _read(out), _read(err))
        _count_cpu(out + '.cpu')
        return subprocess.CompletedProcess(command, process.exitcode, _read(out), _read(err))


def _count_cpu(path: str) -> None:
    global cpu_seconds
    try:
        with open(path) as f:
            cpu_seconds += float(f.read())
    except (OSError, ValueError):  # a tool that left through os._exit reports nothing
        pass


def _read(path: str) -> str:
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()
