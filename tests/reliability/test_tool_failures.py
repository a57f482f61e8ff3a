"""One way every tool fails: whatever goes wrong, one ``error: ...`` line (naming the config file
and line where there is one), exit status 1, no traceback unless asked for (--debug,
CONVNEXT_DEBUG=1); Ctrl-C one line and exit status 130.

The mistakes here are kinds, not a list: a config that does not parse (itself or a _base_ file),
that raises while it runs, that imports what is not there, or names a missing _base_; an
exception of any class from deep inside a tool. In process through ``run_tool`` (the entry point
every tool's ``__main__`` calls), then each tool once as a command."""
import os
import sys

import pytest

from convnext_backbone.cli import config, entry, errors, progress
from convnext_backbone.cli.distributed import LauncherError, check_launcher

from conftest import REPO, load_tool, run_tool

TOY_DET = 'configs/toy/maskrcnn_convnext_toy_coco.py'


@pytest.fixture(autouse=True)
def no_run_in_progress():
    """Each test starts, and leaves this process, without a run in progress."""
    progress.reset(None)
    yield
    progress.reset(None)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def broken_configs(tmp_path):
    """``{kind: (config path, file the line must name, line, words)}``: config mistakes of
    every stage of reading (parse, _base_ parse, execution, custom_imports, missing _base_)."""
    base_ok = write(tmp_path / 'base' / 'ok.py', 'a = 1\n')
    base_bad = write(tmp_path / 'base' / 'bad.py', 'a = 1\nb = dict(x=1,\nc = 3\n')
    return {
        'syntax_error': (write(tmp_path / 'syntax.py', "x = 1\nmodel = dict(type='A'\n"),
                         tmp_path / 'syntax.py', 2, 'not valid Python'),
        'syntax_error_in_a_base_file': (
            write(tmp_path / 'child.py', "_base_ = ['base/bad.py']\nx = 1\n"), base_bad, 2,
            'not valid Python'),
        'name_error_while_it_runs': (
            write(tmp_path / 'runs.py', f"_base_ = ['{base_ok.relative_to(tmp_path)}']\n"
                  "x = 1\ny = undefined_name + 1\n"), tmp_path / 'runs.py', 3,
            "NameError: name 'undefined_name' is not defined"),
        'custom_imports_of_a_missing_module': (
            write(tmp_path / 'imports.py', "custom_imports = dict(imports=['no_such_module_x'],"
                  " allow_failed_imports=False)\n"), tmp_path / 'imports.py', None,
            "No module named 'no_such_module_x'"),
        'missing_base_file': (write(tmp_path / 'orphan.py', "_base_ = ['base/gone.py']\n"),
                              tmp_path / 'orphan.py', None, 'gone.py'),
    }


KINDS = ['syntax_error', 'syntax_error_in_a_base_file', 'name_error_while_it_runs',
         'custom_imports_of_a_missing_module', 'missing_base_file']


@pytest.mark.parametrize('kind', KINDS)
def test_a_config_that_cannot_be_read_is_one_line_naming_file_and_line(kind, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, named, line, words = broken_configs(tmp_path)[kind]
    with pytest.raises(BaseException) as raised:
        config.load_config(str(path))
    text = errors.describe_safely(raised.value)
    assert text.startswith('error: ') and '\n' not in text and words in text, text
    where = os.path.relpath(named, tmp_path)
    assert (f'{where}:{line}:' if line else where) in text, text
    assert '<unknown>' not in text and 'tmp' not in os.path.basename(where)


def run_main(main, monkeypatch, capsys, *argv, env=None):
    """``run_tool(main)`` as a tool's ``__main__`` runs it; returns (exit status, stderr)."""
    monkeypatch.setattr(sys, 'argv', ['tool.py', *argv])
    monkeypatch.setenv(entry.DEBUG_ENV, '0')
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exited:
        entry.run_tool(main)
    return exited.value.code, capsys.readouterr().err


def fails_deep_inside():
    def inner_function():
        return {}['missing key']
    inner_function()


def test_any_exception_is_one_line_naming_where_it_was_raised(monkeypatch, capsys):
    code, err = run_main(fails_deep_inside, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("error: KeyError: missing key (raised at ")
    assert 'test_tool_failures.py:' in lines[0] and '--debug' in lines[0]


@pytest.mark.parametrize('how', ['--debug', 'CONVNEXT_DEBUG=1'])
def test_the_traceback_is_behind_a_flag_or_an_environment_variable(how, monkeypatch, capsys):
    flag = [how] if how.startswith('--') else []
    env = dict([how.split('=')]) if '=' in how else {}
    code, err = run_main(fails_deep_inside, monkeypatch, capsys, 'x', *flag, env=env)
    assert code == 1 and 'Traceback (most recent call last)' in err and 'inner_function' in err
    assert err.strip().splitlines()[-1].startswith('error: KeyError: missing key')
    assert sys.argv == ['tool.py', 'x']  # --debug is the entry point's, not the tool's


@pytest.mark.parametrize('tool, line', [
    (None, 'interrupted (Ctrl-C)'),
    ('train', 'interrupted (Ctrl-C) before training started'),
    ('test', 'interrupted (Ctrl-C) before the run started'),
], ids=['tool_without_a_runner', 'train_starting_up', 'test_starting_up'])
def test_ctrl_c_is_one_line_and_exit_status_130(tool, line, monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt
    progress.reset(tool)
    code, err = run_main(interrupted, monkeypatch, capsys)
    assert code == 130 and err.strip() == line


def test_ctrl_c_turned_into_a_bogus_syntax_error_by_a_library_is_still_ctrl_c(
        monkeypatch, capsys, tmp_path):
    """mmengine's config formatter catches everything, Ctrl-C too, and raises "SyntaxError:
    Failed to format the config file" with the whole config; the interrupt is its context."""
    import mmengine.config.config as config_module
    from mmengine.config import Config

    def format_code(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(config_module, 'FormatCode', format_code)
    run = progress.reset('train', str(tmp_path))
    run.phase, run.iteration = 'train', 4

    def save():
        return Config(dict(a=1)).pretty_text  # what Runner.save_checkpoint calls
    code, err = run_main(save, monkeypatch, capsys)
    assert code == 130 and 'SyntaxError' not in err, err
    assert err.strip() == ('interrupted (Ctrl-C) at iteration 4; no checkpoint was written yet:'
                           ' run the same command again to start afresh')


@pytest.mark.parametrize('phase, line', [
    (dict(phase='train', iteration=7, epoch=2),
     'interrupted (Ctrl-C) at iteration 7 (epoch 2); the last complete checkpoint is {w}/'
     'epoch_1.pth; resume with the same command and --resume'),
    (dict(phase='val', iteration=8, epoch=2),
     'interrupted (Ctrl-C) while validating after iteration 8 (epoch 2); the last complete '
     'checkpoint is {w}/epoch_1.pth; resume with the same command and --resume'),
    (dict(tool='test', phase='test', batch=3, batches=40),
     'interrupted (Ctrl-C) during evaluation at batch 3 of 40; no results were written: run the '
     'command again'),
], ids=['training', 'validating', 'testing'])
def test_the_ctrl_c_line_says_where_the_run_was(phase, line, tmp_path):
    import torch
    torch.save({'state_dict': {}, 'meta': {'epoch': 1}}, tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    run = progress.reset(phase.pop('tool', 'train'), str(tmp_path))
    for key, value in phase.items():
        setattr(run, key, value)
    assert progress.interrupted_line() == line.format(w=tmp_path)


def test_exit_status_of_a_tool_passes_through(monkeypatch, capsys):
    code, err = run_main(lambda: 3, monkeypatch, capsys)
    assert code == 3 and err == ''


def test_launcher_without_its_environment_says_how_to_start(monkeypatch):
    for name in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LauncherError, match=r'--launcher pytorch: this process was not started '
                       r'by torchrun \(no RANK, .*tools/dist_train\.sh CONFIG NUM_PROCESSES'):
        check_launcher('pytorch', 'train')
    check_launcher('none')
    for name, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='x',
                            MASTER_PORT='1').items():
        monkeypatch.setenv(name, value)
    check_launcher('pytorch')


def test_resume_path_that_is_not_there_is_an_error(tmp_path):
    from mmengine.config import Config
    cfg = Config(dict(work_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match=r'--resume: checkpoint .*nope\.pth does not '
                       'exist'):
        config.set_resume(cfg, str(tmp_path / 'nope.pth'))


# Each tool once, as a command --------------------------------------------------------------------

def assert_one_error_line(proc, *words):
    """The process ended with one ``error:`` line holding ``words``, and no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert lines and lines[-1].startswith('error: '), proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    for word in words:
        assert word in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def bad_base(tmp_path):
    """A config inheriting the toy detector through a _base_ file with a syntax error."""
    write(tmp_path / 'mine' / 'base.py', f"_base_ = ['{REPO / TOY_DET}']\n"
          "model = dict(backbone=dict(drop_path_rate=0.1)\n")
    return write(tmp_path / 'mine' / 'config.py', "_base_ = ['base.py']\n")


TOOLS = {  # tool: its arguments around the config
    'train.py': lambda cfg, tmp: [cfg, '--work-dir', tmp / 'w'],
    'test.py': lambda cfg, tmp: [cfg, tmp / 'c.pth', '--work-dir', tmp / 'w'],
    'export.py': lambda cfg, tmp: [cfg, 'none', '--out', tmp / 'm.onnx'],
    'get_flops.py': lambda cfg, tmp: [cfg, '--shape', '64'],
    'benchmark.py': lambda cfg, tmp: [cfg, '--iters', '1'],
    'test_onnx.py': lambda cfg, tmp: [cfg, tmp / 'model.onnx'],
}
# Real subprocesses for the two ways of reading a config (ours, the deployment's, which wraps
# the failure in its own error); the others run their __main__ in process (runpy, as python
# runs a script), to spare the suite three interpreter starts.
SUBPROCESS = ('train.py', 'export.py')


def run_as_command(tool, args, monkeypatch, capsys):
    """``python tools/TOOL ARGS`` in this process: the script's __main__ block, sys.argv set.
    Returns (exit status, stderr)."""
    import runpy
    monkeypatch.setattr(sys, 'argv', [str(REPO / 'tools' / tool), *map(str, args)])
    monkeypatch.setenv(entry.DEBUG_ENV, '0')
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / 'tools' / tool), run_name='__main__')
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize('tool', [pytest.param(t, marks=pytest.mark.slow) if t in SUBPROCESS
                                  else t for t in sorted(TOOLS)])
def test_every_config_tool_says_the_same_one_line(tool, tmp_path, bad_base, monkeypatch,
                                                  capsys):
    """The same broken config, the same line, from every tool that reads a config."""
    if tool == 'test.py':  # a checkpoint that passes the tool's up-front check
        import torch
        torch.save({'state_dict': {}}, tmp_path / 'c.pth')
    args = TOOLS[tool](bad_base, tmp_path)
    if tool in SUBPROCESS:
        # a fresh interpreter: the tool as a command, start to end (tool_process)
        proc = run_tool(REPO / 'tools' / tool, *args, check=False, fresh=True)
        code, err = proc.returncode, proc.stderr + proc.stdout
    else:
        code, err = run_as_command(tool, args, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and lines and 'Traceback' not in err, err[-3000:]
    assert lines[-1].startswith(f'error: {bad_base.parent}/base.py:2: the config is not valid '
                                "Python ('(' was never closed"), lines[-1]
    assert not (tmp_path / 'w').exists()  # nothing left by the refused start


def test_convert_checkpoint_says_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / 'src.pth').write_bytes(b'not a checkpoint')
    code, err = run_as_command('convert_checkpoint.py', [tmp_path / 'src.pth',
                                                         tmp_path / 'dst.pth'],
                               monkeypatch, capsys)
    assert code == 1 and err.startswith('error: ') and 'src.pth' in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / 'dst.pth').exists()


def test_train_with_launcher_pytorch_but_no_torchrun_is_one_line(tmp_path, monkeypatch,
                                                                 capsys):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    code, err = run_as_command('train.py', [TOY_DET, '--work-dir', tmp_path / 'w', '--launcher',
                                            'pytorch'], monkeypatch, capsys)
    assert code == 1 and err.startswith('error: --launcher pytorch: this process was not '
                                        'started by torchrun (no RANK'), err
    assert 'tools/dist_train.sh' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('tool, args', [
    ('benchmark_onnx', ['--cases', 'backbone', '--work-dir', '{blocker}/sub']),
    ('benchmark_backbone', ['--threads', '0']),
], ids=['benchmark_onnx_unwritable_folder', 'benchmark_backbone_zero_threads'])
def test_benchmark_tools_fail_the_same_way(tool, args, tmp_path, monkeypatch, capsys):
    """Tools without a config: a failure of their work is one line too (in process, through the
    entry point their __main__ calls)."""
    module = load_tool(tool)
    (tmp_path / 'file').write_text('')
    argv = [a.format(blocker=tmp_path / 'file') for a in args]
    code, err = run_main(module.main, monkeypatch, capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith('error: '), err
