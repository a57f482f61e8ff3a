"""The package as users install it, by the README's pip recipe as written: the wheel built by
its ``pip wheel`` line (or the one ``make dist`` built, ``CONVNEXT_WHEEL``), installed by its
``pip install`` line (not editable) into a fresh environment that has the pinned stack, then the
next section's ``mim train`` / ``mim test`` / ``mim search`` lines from a folder outside the
clone, the clone not importable. Offline: pip finds what the recipe installs beyond the stack
(openmim, for the `mim` command) in a wheel made from the installed copy."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from doc_commands import doc_command, shell_env

from conftest import REPO
from model_index import config_files

pytestmark = pytest.mark.slow  # builds and installs a wheel, trains in subprocesses

VERSION_SCRIPT = '''
import convnext_backbone
from convnext_backbone import MODELS, compat
print('file', convnext_backbone.__file__)
print('version', convnext_backbone.__version__)
print('registered', MODELS.get('ConvNeXt').__name__)
print('fixes', ' '.join(compat.applied()))
'''

USER_CONFIG = '''_base_ = ['convnext_backbone::toy/maskrcnn_convnext_toy_coco.py']
data_root = '{coco}/'
ann_file = data_root + 'annotations/instances_val2017.json'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=ann_file)
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=2)  # 4 images, batch 2: two iterations
'''


# README.md, "With pip", and the next section's commands, as written
PIP_WHEEL = 'pip wheel --no-deps --no-build-isolation -w dist .'
PIP_INSTALL = ('pip install -c requirements/constraints.txt '
               '"dist/convnext_backbone-0.1.0-py3-none-any.whl[mmdet,mmseg,mim]"')
MIM_TRAIN = 'mim train convnext_backbone my_config.py --work-dir work_dirs/mine'
MIM_TEST = ('mim test convnext_backbone my_config.py --checkpoint '
            '"$(cat work_dirs/mine/last_checkpoint)"')
MIM_SEARCH = 'mim search convnext_backbone'
# What the recipe installs itself (the rest of the pinned stack is there already): openmim, for
# the `mim` command. Offline, pip takes it from a wheel of the installed one (PyPI's stand-in).
RECIPE_INSTALLS = ('openmim',)
# what a copy of the clone leaves out: the clone's own outputs (top level), caches (anywhere)
NOT_COPIED_TOP = {'.git', '.venv', 'dist', 'build', 'work_dirs', 'data'}
NOT_COPIED = shutil.ignore_patterns('__pycache__', '*.egg-info', '.pytest_cache')


def _not_copied(folder, names):
    top = NOT_COPIED_TOP if Path(folder) == REPO else set()
    return top & set(names) | NOT_COPIED(folder, names)


def shell(command, cwd, env, timeout=600):
    """``command`` as written, in bash (the docs' commands are shell lines)."""
    proc = subprocess.run(['bash', '-c', command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f'{command} exited {proc.returncode}\n' \
        f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


def clone_with_wheel(root):
    """A clone holding ``dist/<the wheel>`` and ``requirements/``: the one ``make dist`` built
    (``CONVNEXT_WHEEL``, as ``make test`` runs the suite), else built by the README's
    ``pip wheel`` line in a copy of this clone (the clone's own dist/ stays as it is)."""
    clone = root / 'clone'
    if os.environ.get('CONVNEXT_WHEEL'):
        (clone / 'dist').mkdir(parents=True)
        shutil.copytree(REPO / 'requirements', clone / 'requirements')
        shutil.copy(os.environ['CONVNEXT_WHEEL'], clone / 'dist')
    else:
        shutil.copytree(REPO, clone, symlinks=True, ignore=_not_copied)
        shell(doc_command(PIP_WHEEL), clone, shell_env())
    return clone, next((clone / 'dist').glob('convnext_backbone-*.whl'))


def wheel_of_installed(name, out):
    """A wheel of the installed distribution ``name``, packed from its installed files
    (``RECORD``), so an offline pip installs it, entry points and all, as from PyPI."""
    import base64
    import hashlib
    from importlib.metadata import distribution
    dist = distribution(name)
    info = next(f for f in dist.files if f.name == 'METADATA').parent
    tags = [line.split(': ', 1)[1] for line in dist.read_text('WHEEL').splitlines()
            if line.startswith('Tag: ')]
    pythons = '.'.join(sorted({t.split('-')[0] for t in tags}))
    path = out / f'{name}-{dist.version}-{pythons}-none-any.whl'
    record = []
    with zipfile.ZipFile(path, 'w') as wheel:
        for file in dist.files:
            if file.parts[0] == '..' or '__pycache__' in file.parts or file.suffix == '.pyc' \
                    or (file.parent == info and file.name in ('RECORD', 'INSTALLER')):
                continue
            data = file.locate().read_bytes()
            wheel.writestr(file.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
            record.append(f'{file.as_posix()},sha256={digest.decode()},{len(data)}')
        record.append(f'{info.as_posix()}/RECORD,,')
        wheel.writestr(f'{info.as_posix()}/RECORD', '\n'.join(record) + '\n')
    return path


def stack_without(target, left_out=()):
    """Links to everything the site-packages folders of the running interpreter hold (the first
    of each name, in import order) except this project, its editable install included, and the
    distributions ``left_out`` (their top-level names and metadata): the pinned stack, without
    the clone."""
    from importlib.metadata import distribution
    target.mkdir()
    skipped = {part.lower() for name in left_out for file in distribution(name).files
               for part in file.parts[:1] if part != '..'}
    sites = [Path(p) for p in sys.path if Path(p).name in ('site-packages', 'dist-packages')]
    for site in [s for i, s in enumerate(sites) if s.is_dir() and s not in sites[:i]]:
        for entry in site.iterdir():
            name = entry.name.lower()
            if name.startswith(('convnext_backbone', '__editable__', '_convnext_backbone')) \
                    or name.endswith('.pth') or name == '__pycache__' or name in skipped \
                    or (target / entry.name).exists():
                continue
            (target / entry.name).symlink_to(entry)
    return target


class Installed:
    """A fresh venv (with its own pip) on the pinned stack, and the wheel installed into it by
    the README's ``pip install`` line run as written in the clone; ``run`` works in ``cwd``
    (outside the clone) with no PYTHONPATH, ``shell`` runs a command line there with the venv's
    ``bin`` first on PATH (its ``python``, ``pip`` and ``mim``)."""

    def __init__(self, root):
        self.clone, self.wheel = clone_with_wheel(root)
        env_dir = root / 'env'
        subprocess.run([sys.executable, '-m', 'venv', str(env_dir)], check=True, timeout=300)
        self.bin = env_dir / 'bin'
        self.python = str(self.bin / 'python')
        self.cwd = root / 'work'
        self.cwd.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
        self.site = Path(self.output('import sysconfig; print(sysconfig.get_paths()["purelib"])'))
        # the venv's own setuptools (65, bundled with Python 3.11) would shadow the stack's
        self.run('-m', 'pip', 'uninstall', '-q', '-y', 'setuptools')
        (self.site / 'pinned_stack.pth').write_text(
            str(stack_without(root / 'stack', RECIPE_INSTALLS)) + '\n')
        wheels = root / 'wheels'
        wheels.mkdir()
        for name in RECIPE_INSTALLS:
            wheel_of_installed(name, wheels)
        self.env.update(PATH=os.pathsep.join([str(self.bin), os.environ.get('PATH', '')]),
                        PIP_NO_INDEX='1', PIP_FIND_LINKS=str(wheels),
                        PIP_DISABLE_PIP_VERSION_CHECK='1')
        assert doc_command(PIP_INSTALL).split('"')[1].split('[')[0] == \
            f'dist/{self.wheel.name}'  # the README names the wheel this version builds
        self.install_log = shell(doc_command(PIP_INSTALL), self.clone, self.env)

    def run(self, *args, timeout=300):
        proc = subprocess.run([self.python, *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f'{args} exited {proc.returncode}\n' \
            f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        return proc.stdout + proc.stderr

    def shell(self, command, timeout=600):
        return shell(command, self.cwd, self.env, timeout)

    def output(self, code):
        return self.run('-c', code).strip()


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """The README's pip recipe, as written, into a fresh environment (one install)."""
    return Installed(tmp_path_factory.mktemp('installed'))


def test_the_wheel_carries_every_config_the_tools_and_the_model_index(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for config in config_files():
        assert f'convnext_backbone/.mim/{config}' in names
    assert {'convnext_backbone/.mim/model-index.yml', 'convnext_backbone/.mim/tools/train.py',
            'convnext_backbone/.mim/tools/test.py'} <= names


def test_installed_package_imports_registers_and_ships_its_configs(installed):
    (installed.cwd / 'check.py').write_text(VERSION_SCRIPT)
    out = dict(line.split(' ', 1) for line in installed.run('check.py').splitlines()
               if line.split(' ', 1)[0] in ('file', 'version', 'registered', 'fixes'))
    package_dir = Path(out['file']).parent
    assert package_dir == installed.site / 'convnext_backbone'  # the wheel, not the clone
    assert out['registered'] == 'ConvNeXt'
    assert 'package_prefix_for_our_configs' in out['fixes'].split()
    shipped = {p.relative_to(package_dir / '.mim').as_posix()
               for p in (package_dir / '.mim' / 'configs').rglob('*.py')}
    assert set(config_files()) <= shipped
    assert not any(p.is_symlink() for p in (package_dir / '.mim').rglob('*'))
    show = installed.run('-m', 'pip', 'show', 'convnext_backbone')
    assert f"Version: {out['version']}" in show.splitlines()
    assert f'Location: {installed.site}' in show.splitlines()


def test_the_recipe_installs_the_mim_command(installed):
    """The README's pip line installs the `mim` command its next section uses, into the
    environment's own bin (the extra named in the line), and pip reports no conflict."""
    assert (installed.bin / 'mim').is_file()
    assert installed.shell('command -v mim').strip() == str(installed.bin / 'mim')
    assert 'Successfully installed' in installed.install_log
    assert 'convnext_backbone-0.1.0' in installed.install_log and 'openmim' in \
        installed.install_log
    installed.run('-m', 'pip', 'check')


def test_a_user_config_outside_the_clone_trains_and_tests_with_mim(installed, toy_root):
    # The README's `mim train` and `mim test` lines, as written, in a folder outside the clone:
    # mim runs the installed tools/train.py and tools/test.py.
    train_py = installed.site / 'convnext_backbone' / '.mim' / 'tools' / 'train.py'
    (installed.cwd / 'my_config.py').write_text(USER_CONFIG.format(coco=toy_root / 'coco'))
    # The toy inherits the flagship by a relative _base_ link, which inherits ../_base_ pieces
    # and mmdet:: bases: all resolved from the installed copy.
    out = installed.shell(doc_command(MIM_TRAIN))
    assert str(train_py) in out
    checkpoint = (installed.cwd / 'work_dirs' / 'mine' / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).name == 'epoch_1.pth'
    assert torch.load(checkpoint, map_location='cpu', weights_only=False)['meta']['iter'] == 2
    out = installed.shell(doc_command(MIM_TEST))
    assert str(train_py.with_name('test.py')) in out
    assert re.search(r'coco/bbox_mAP: -?\d', out) and re.search(r'coco/segm_mAP: -?\d', out)


def test_mim_search_lists_the_shipped_configs(installed):
    out = installed.shell(doc_command(MIM_SEARCH))
    for name in ('maskrcnn_convnext_t_3x_coco', 'upernet_convnextv2_atto_160k_ade20k',
                 'maskrcnn_convnext_toy_coco'):
        assert name in out


def test_the_installed_index_names_the_released_weights_of_the_installed_configs(installed):
    """``released`` read from the installed package's model index (copies, not the clone's),
    for a config given by its installed path and for `mim download`'s copy (by name)."""
    (installed.cwd / 'cascade_maskrcnn_convnext_t_3x_coco.py').write_text('_base_ = []\n')
    config = installed.site / 'convnext_backbone' / '.mim' / 'configs' / 'upernet' / \
        'upernet_convnext_t_160k_ade20k.py'
    out = installed.output(
        'from convnext_backbone.checkpoint import find_release\n'
        f'print(find_release({str(config)!r}).weights)\n'
        "print(find_release('cascade_maskrcnn_convnext_t_3x_coco.py').weights)")
    assert out.splitlines()[-2:] == [
        'https://dl.fbaipublicfiles.com/convnext/ade20k/upernet_convnext_tiny_1k_512x512.pth',
        'https://dl.fbaipublicfiles.com/convnext/coco/cascade_mask_rcnn_convnext_tiny_1k_3x.pth']
