"""The commands README.md and docs/*.md give, extracted by one rule (see :func:`doc_commands`),
and the way the end-to-end tests take their command lines from them (:func:`doc_command`).

The rule:

- a fenced block whose info string is ``bash``, ``sh``, ``shell`` or ``console``: every line is a
  command once ``\\``-continued lines are joined and a trailing ``# comment`` is cut;
- a fenced block with no info string: the lines that start with a command word (below); the
  others (directory trees, error messages) are not commands;
- an inline code span outside fenced blocks (it may wrap onto the next line) that starts with a
  command word and names what it runs: ``python tools/...``, ``python -m X``, ``make TARGET``,
  ``mim SUBCOMMAND ARG``, ``pip SUBCOMMAND ARG``, and holds no ``...``. A span that only names
  a program (`mim train`, `pip show`, `mim ... convnext_backbone`, `mim train/test`) or a script
  (`tools/train.py`) is a mention, not a command;
- command words: ``python``, ``.venv/bin/python``, ``make``, ``mim``, ``pip``, each optionally
  after ``NAME=value`` environment assignments;
- a line with ``[...]`` optional parts is a usage synopsis, not a command (its options are
  checked to exist in the tool: tests/docs/test_doc_commands.py); UPPER-CASE words (``CONFIG``,
  ``CHECKPOINT``) in a command are placeholders that the test running it fills in.

A command's identity is its text with whitespace collapsed; the same text in two places is one
command.
"""
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
SHELL_BLOCKS = ('bash', 'sh', 'shell', 'console')
_ENV = r'(?:[A-Z_][A-Z0-9_]*=\S*\s+)*'
COMMAND_START = re.compile(_ENV + r'(?:\.venv/bin/)?(?:python|make|mim|pip)\b')
_NAMES_WHAT_IT_RUNS = re.compile(
    _ENV + r'(?:(?:\.venv/bin/)?python3? (?:tools/\S+|-m \S+)'
    r'|make (?:-\S+ )*[a-z][\w-]*'
    r'|(?:mim|pip) [a-z][\w-]* (?!\.\.\.)\S+)')


@dataclass(frozen=True)
class DocCommand:
    """One command as the docs give it: ``text`` (whitespace collapsed) and where it is."""
    text: str
    file: str
    line: int
    kind: str  # 'block' or 'inline'

    @property
    def synopsis(self) -> bool:
        """``[...]`` outside quotes (a pip extra in quotes is not an optional part)."""
        unquoted = re.sub(r'"[^"]*"|\'[^\']*\'', '', self.text)
        return bool(re.search(r'\[[^\]]*\]', unquoted))

    @property
    def placeholders(self) -> List[str]:
        return [w for w in shlex.split(self.text, comments=True)
                if re.fullmatch(r'[A-Z][A-Z_]{2,}', w)]


def doc_files() -> List[Path]:
    return [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]


def _cut_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` outside quotes after a space)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in '"\'':
            quote = char
        elif char == '#' and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _collapse(text: str) -> str:
    return ' '.join(text.split())


def _block_commands(body: str, every_line: bool):
    """(line offset, command) of a fenced block's body."""
    lines, start, pending = body.split('\n'), 0, ''
    for offset, raw in enumerate(lines):
        line = _cut_comment(raw).rstrip()
        if not pending:
            start = offset
        if line.endswith('\\'):
            pending += line[:-1] + ' '
            continue
        text, pending = _collapse(pending + line), ''
        if text and (every_line or COMMAND_START.match(text)):
            yield start, text


def _extract(path: Path) -> List[DocCommand]:
    text, found = path.read_text(), []
    name = path.relative_to(REPO).as_posix()
    fence = re.compile(r'^[ \t]*```([^\n`]*)\n(.*?)^[ \t]*```', re.S | re.M)
    for match in fence.finditer(text):
        info = match.group(1).strip().split(' ')[0]
        if info and info not in SHELL_BLOCKS:
            continue
        first = text.count('\n', 0, match.start(2)) + 1
        for offset, command in _block_commands(match.group(2), info in SHELL_BLOCKS):
            found.append(DocCommand(command, name, first + offset, 'block'))
    outside = fence.sub(lambda m: '\n' * m.group(0).count('\n'), text)
    for match in re.finditer(r'(?<!`)`([^`]+)`(?!`)', outside):
        span = _collapse(match.group(1))
        if _NAMES_WHAT_IT_RUNS.match(span) and '...' not in span:
            found.append(DocCommand(span, name, outside.count('\n', 0, match.start()) + 1,
                                    'inline'))
    return found


def doc_commands() -> List[DocCommand]:
    """Every command of README.md and docs/*.md, in file order (see the module docstring)."""
    return [command for path in doc_files() for command in _extract(path)]


def commands_by_text() -> Dict[str, List[DocCommand]]:
    grouped: Dict[str, List[DocCommand]] = {}
    for command in doc_commands():
        grouped.setdefault(command.text, []).append(command)
    return grouped


def doc_command(text: str) -> str:
    """The docs' command ``text`` (whitespace collapsed, as :func:`doc_commands` gives it),
    failing when the docs no longer give it. The end-to-end tests take their command lines
    through this, and tests/docs/test_doc_commands.py finds each use of it by reading the
    tests' source (a registry checked both ways)."""
    text = _collapse(text)
    if text not in commands_by_text():
        raise AssertionError(f'the docs no longer give the command {text!r}: update the test '
                             'that runs it and tests/docs/registry.py')
    return text


def doc_argv(text: str, **placeholders) -> List[str]:
    """The argv of the docs' command ``text`` (without its leading ``NAME=value`` environment
    assignments: :func:`doc_env`) with its UPPER-CASE placeholders filled in (each one given,
    nothing else replaced) and ``python`` / ``.venv/bin/python`` as the running interpreter
    (the environment the tests run in)."""
    argv = shlex.split(doc_command(text), comments=True)
    argv = argv[len(doc_env(text)):]
    missing = {w for w in argv if re.fullmatch(r'[A-Z][A-Z_]{2,}', w)} - set(placeholders)
    unknown = set(placeholders) - set(argv)
    if missing or unknown:
        raise AssertionError(f'{text!r}: placeholders to fill {sorted(missing)}, not in the '
                             f'command {sorted(unknown)}')
    argv = [str(placeholders.get(word, word)) for word in argv]
    if argv[0] in ('python', 'python3', '.venv/bin/python'):
        argv[0] = sys.executable
    return argv


def doc_env(text: str) -> Dict[str, str]:
    """The ``NAME=value`` environment assignments the docs' command ``text`` starts with."""
    env = {}
    for word in shlex.split(doc_command(text), comments=True):
        if not re.fullmatch(r'[A-Z_][A-Z0-9_]*=.*', word):
            break
        name, value = word.split('=', 1)
        env[name] = value
    return env


def shell_env(**extra) -> dict:
    """The environment a docs' shell command runs in: this interpreter's ``bin`` first on PATH
    (so ``python``, ``pip`` and the tools are this environment's), plus ``extra``."""
    env = dict(os.environ)
    env['PATH'] = os.pathsep.join([os.path.dirname(sys.executable), env.get('PATH', '')])
    env.update({key: str(value) for key, value in extra.items()})
    return env


def project_folder(path: Path, toy_root: Optional[Path] = None) -> Path:
    """``path`` set up as the clone the docs' commands run in: links to this clone's
    ``configs/``, ``tools/`` and ``requirements/``, and ``data/toy`` to the test's toy sets
    (the configs' own data roots), so a command runs as written with ``cwd=path`` and writes
    its work dirs there, not into the clone."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ('configs', 'tools', 'requirements'):
        if not (path / name).exists():
            (path / name).symlink_to(REPO / name)
    if toy_root is not None and not (path / 'data' / 'toy').exists():
        (path / 'data').mkdir(exist_ok=True)
        (path / 'data' / 'toy').symlink_to(toy_root)
    return path
