"""Every command in README.md and docs/*.md runs in the suite as written, or is listed with the
reason it does not (tests/docs/registry.py), checked both ways.

Which text is a command: tests/docs/doc_commands.py (fenced ``bash``/``sh``/``shell``/``console``
blocks line by line, command lines of unlabelled blocks, inline spans that start with
``python tools/...``, ``python -m``, ``make TARGET``, ``mim``/``pip SUBCOMMAND ARG``; ``[...]``
lines are usage synopses, UPPER-CASE words placeholders).

How the suite stays within its time: a command is run once, by the end-to-end test that runs
its tool path anyway, which takes the command line from the docs (``doc_command`` /
``doc_argv``); the registry names that test, and this module reads the tests' source to check
that each named test file takes exactly those commands and that every command a test takes is
in the registry. Only commands no test ran before get a run here, as cheap as possible: the
cheap ones as written; the benchmarks' measurement runs at a tiny size, the size given only
through options the docs show (``--arch``, ``--batch``, ``--size``, ``--reps``, ``--warmup``,
``--threads``, ``--impls``; appended: argparse keeps the last value). Listed commands (a GPU,
internet, COCO/ADE20K, the suite itself, measurement runs) are still parsed by their tool's own
argument parser, and every synopsis names only options its tool has.
"""
import ast
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from doc_commands import REPO, commands_by_text, doc_argv, doc_command, shell_env
from registry import GENERATED, REGISTRY, TINY_BENCH, Listed, Run

from conftest import THREADS, load_tool

CALLS = ('doc_command', 'doc_argv')
TINY = ['--arch', 'v2-atto', '--batch', '1', '--size', '32', '--reps', '1', '--warmup', '0']


def test_every_command_is_run_or_listed():
    """A command new in the docs needs a test or a listed reason; an entry whose command left
    the docs goes too."""
    documented = {text for text, c in commands_by_text().items() if not c[0].synopsis}
    registered = set(REGISTRY)
    where = {text: f'{c[0].file}:{c[0].line}' for text, c in commands_by_text().items()}
    assert not documented - registered, '\n'.join(
        f'{where[t]}: {t}  <- not in tests/docs/registry.py' for t in documented - registered)
    assert not registered - documented, sorted(registered - documented)
    keys = []  # the registry's dict keys and the commands of its comprehension, as written
    tree = ast.parse((Path(__file__).parent / 'registry.py').read_text())
    table = next(node for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], 'id', None) == 'REGISTRY')
    for node in ast.walk(table):
        if isinstance(node, ast.Dict):
            keys += [k.value for k in node.keys if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.DictComp) and isinstance(node.generators[0].iter, ast.Tuple):
            keys += [e.value for e in node.generators[0].iter.elts]
    keys += list(GENERATED)  # the entries made from the model index
    assert sorted(keys) == sorted(REGISTRY), 'a command registered twice'


def _source_uses():
    """{test file: {command text: functions whose source takes it}} for every call of
    doc_command / doc_argv in tests/ (the command as a literal or a module-level constant)."""
    uses = {}
    for path in (REPO / 'tests').rglob('*.py'):
        if path.parent.name == 'docs' and path.name != 'test_doc_commands.py':
            continue
        tree = ast.parse(path.read_text())
        constants = {t.id: node.value.value for node in tree.body
                     if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                     and isinstance(node.value.value, str) for t in node.targets
                     if isinstance(t, ast.Name)}
        for scope in ast.walk(tree):
            if not isinstance(scope, (ast.FunctionDef, ast.ClassDef)):
                continue
            for call in ast.walk(scope):
                if not (isinstance(call, ast.Call) and getattr(call.func, 'id', None) in CALLS
                        and call.args):
                    continue
                arg = call.args[0]
                text = arg.value if isinstance(arg, ast.Constant) else constants.get(
                    getattr(arg, 'id', None))
                if text is not None:
                    name = path.relative_to(REPO).as_posix()
                    uses.setdefault(name, {}).setdefault(' '.join(text.split()), set()).add(
                        scope.name)
    return uses


def test_the_registry_and_the_tests_agree():
    """Each Run entry's test (or its fixture or helper) takes that command from the docs; each
    command a test takes is registered to that test file (as Run or as a tiny run); every test
    a Listed entry names for its tiny run exists."""
    uses, problems = _source_uses(), []
    for text, entry in REGISTRY.items():
        if isinstance(entry, Run):
            path, function = entry.test.split('::')
            if function not in uses.get(path, {}).get(text, set()):
                problems.append(f'{entry.test} does not take {text!r} with {"/".join(CALLS)}')
        for test in getattr(entry, 'tiny', ()):
            path, function = test.split('::')
            if not re.search(rf'^\s*def {function}\(', (REPO / path).read_text(), re.M):
                problems.append(f'{test} (the tiny run of {text!r}) does not exist')
    for path, texts in uses.items():
        for text in texts:
            entry = REGISTRY.get(text)
            named = [entry.test] if isinstance(entry, Run) else list(getattr(entry, 'tiny', ()))
            if not any(test.startswith(f'{path}::') for test in named):
                problems.append(f'{path} takes {text!r}, which the registry does not give it')
    assert not problems, '\n'.join(problems)


PARSERS = {'tools/benchmark_backbone.py': 'benchmark_backbone', 'tools/export.py': 'export',
           'tools/get_flops.py': 'get_flops',
           'tools/gpu_check.py': 'gpu_check', 'tools/test_onnx.py': 'test_onnx'}


def test_listed_commands_parse_with_their_tools_own_parsers():
    """A command the suite does not run is at least read by its tool's own argument parser
    (unknown options, bad choices and refused combinations fail here, in-process, cheaply);
    a listed make target exists."""
    tools = {}
    for text, entry in REGISTRY.items():
        if not isinstance(entry, Listed):
            continue
        words = shlex.split(text, comments=True)
        if words[0].endswith('python') and words[1] in PARSERS:
            module = tools.setdefault(words[1], load_tool(PARSERS[words[1]]))
            try:
                module.parse_args(words[2:])
            except SystemExit as exit_:
                pytest.fail(f'{text}: the tool refuses its arguments (exit {exit_.code})')
        elif 'make' in words[:2]:
            rest = words[words.index('make') + 1:]
            target = next(w for i, w in enumerate(rest) if not w.startswith('-') and '=' not in w
                          and (i == 0 or rest[i - 1] != '-o'))
            proc = subprocess.run(['make', '-n', '-o', 'setup', '-C', str(REPO), target],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, (text, proc.stderr)
        elif words[0].startswith('tools/') and words[0].endswith('.sh'):
            assert (REPO / words[0]).is_file(), text


def test_synopses_name_only_options_their_tools_have(capsys):
    """A usage synopsis (``[...]`` parts) names only options its tool's --help lists."""
    for text, commands in commands_by_text().items():
        if not commands[0].synopsis:
            continue
        tool = next(w for w in shlex.split(text) if w.startswith('tools/'))
        with pytest.raises(SystemExit):
            load_tool(PARSERS[tool]).parse_args(['--help'])
        usage = capsys.readouterr().out
        for option in re.findall(r'--[a-z][\w-]*', text):
            assert option in usage, f'{commands[0].file}: {text}: {tool} has no {option}'


def test_cheap_commands_run_as_written(monkeypatch, capsys):
    """`make lint` (ruff; its environment is this one: make's documented -o setup and PY) and
    the model index check, `python tools/model_index.py` and `--add` (in-process: the script
    under ``__main__`` with the command's arguments; everything is listed, so --add writes
    nothing)."""
    words = shlex.split(doc_command('make lint'))
    proc = subprocess.run([*words, '-o', 'setup', '-C', str(REPO), f'PY={sys.executable}'],
                          capture_output=True, text=True, timeout=300, env=shell_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'All checks passed!' in proc.stdout
    before = {p: p.read_bytes() for p in REPO.glob('configs/**/metafile.yml')}
    for argv in (doc_argv('python tools/model_index.py'),
                 doc_argv('python tools/model_index.py --add')):
        python, script, *args = argv
        monkeypatch.setattr(sys, 'argv', [script, *args])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(REPO / script), run_name='__main__')
        assert exit_.value.code == 0, capsys.readouterr()
        assert re.search(r'model-index\.yml: \d+ configs, all listed', capsys.readouterr().out)
    assert before == {p: p.read_bytes() for p in REPO.glob('configs/**/metafile.yml')}


def _isa_runs_here(isa):
    """Whether this CPU has ``isa`` (the tool runs under it; where a library cannot tell what it
    runs, e.g. MKL on AMD, the report says so and the run goes on)."""
    from benchmarking.isa import cpu_flags
    return ('avx512f' if isa == 'avx512' else 'avx2') in cpu_flags()


BENCHMARKS = {  # registry: TINY_BENCH; each with the options that make it tiny
    'clock-process': ('.venv/bin/python tools/benchmark_backbone.py --threads 1 --clock process',
                      [*TINY, '--impls', 'ours']),
    'heap-profile': ('python tools/benchmark_backbone.py --impls ours,timm_cl --modes infer '
                     '--reps 7 --no-memory --retain-heap --profile',
                     [*TINY, '--threads', str(THREADS)]),
    'isa-avx512': ('python tools/benchmark_backbone.py --isa avx512 --threads 1 --clock process '
                   '--no-memory --reps 3 --warmup 1', TINY),
    'isa-avx2': ('python tools/benchmark_backbone.py --isa avx2 --threads 1 --clock process '
                 '--no-memory --reps 3 --warmup 1', TINY),
}


@pytest.mark.slow  # the benchmark tool in subprocesses
@pytest.mark.parametrize('case', sorted(BENCHMARKS))
def test_benchmark_commands_at_a_tiny_size(case):
    """docs/benchmarks.md's measurement commands that no other test runs: as written, at a tiny
    size (the table in docs/benchmarks.md is theirs; here only that they run and report)."""
    text, tiny = BENCHMARKS[case]
    assert REGISTRY[' '.join(text.split())].tiny == (TINY_BENCH,)
    if case.startswith('isa-') and not _isa_runs_here(case[4:]):
        pytest.skip(f'--{case.replace("-", " ")}: this CPU has no {case[4:].upper()}')
    if case == 'isa-avx2' and _isa_runs_here('avx512'):
        pytest.skip('the AVX-512 twin of this command runs here (--isa avx2 itself: '
                    'tests/tools/test_benchmark_tools.py)')
    argv = [*doc_argv(text), *tiny]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f'- command: `python tools/benchmark_backbone.py {" ".join(argv[2:])}`' in proc.stdout
    assert re.search(r'^\| ours \| \w+ \| infer \|', proc.stdout, re.M), proc.stdout[-3000:]
    if '--profile' in text:
        assert '### Time per kind of op' in proc.stdout
    if '--clock process' in text:
        assert 'process CPU time' in proc.stdout
    if '--isa' in text:
        isa = shlex.split(text)[shlex.split(text).index('--isa') + 1]
        assert f'- ISA in use (--isa {isa}):' in proc.stdout
