"""tools/torchrun.sh (behind dist_train.sh / dist_test.sh) runs the project's environment, or
CONVNEXT_PYTHON, never a PYTHON variable the user's shell happens to have: tools/setup_env.sh
used PYTHON for the interpreter that builds the venv, and with it set dist_train.sh ran that
interpreter ("No module named torch")."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, free_port

TORCHRUN = REPO / 'tools' / 'torchrun.sh'


def launch(tmp_path, **env):
    script = tmp_path / 'where.py'
    script.write_text('import sys\nprint("ran", sys.executable, sys.argv[1:])\n')
    environ = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'CONVNEXT_PYTHON')}
    environ.update(env, PORT=str(free_port()))
    return subprocess.run(['bash', str(TORCHRUN), '1', str(script), 'x'], env=environ,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # a launcher script in a subprocess
def test_a_python_variable_in_the_shell_is_ignored(tmp_path):
    proc = launch(tmp_path, PYTHON='/nonexistent/python3.11')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ran " in proc.stdout and "['x', '--launcher', 'pytorch']" in proc.stdout


@pytest.mark.slow  # a launcher script in a subprocess
def test_convnext_python_names_the_interpreter(tmp_path):
    wrapper = tmp_path / 'python'
    wrapper.write_text(f'#!/bin/sh\necho via-wrapper\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    proc = launch(tmp_path, CONVNEXT_PYTHON=str(wrapper))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('via-wrapper') and 'ran ' in proc.stdout


def test_no_launcher_script_reads_a_plain_python_variable():
    for name in ('torchrun.sh', 'dist_train.sh', 'dist_test.sh', 'setup_env.sh'):
        text = (REPO / 'tools' / name).read_text()
        assert not re.search(r'\$\{?PYTHON\b', text), name
