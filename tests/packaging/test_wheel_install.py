"""The package as users install it: the wheel built from this tree (or the one CI built,
``CONVNEXT_WHEEL``), installed with pip (not editable) into a fresh environment that reuses the
pinned stack, used from a folder outside the clone with the clone not importable."""
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

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


def build_wheel(out):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=300)
    return next(out.glob('convnext_backbone-*.whl'))


def stack_without_this_project(target):
    """Links to everything the site-packages folders of the running interpreter hold (the first
    of each name, in import order) except this project, its editable install included: the
    pinned stack, without the clone."""
    target.mkdir()
    sites = [Path(p) for p in sys.path if Path(p).name in ('site-packages', 'dist-packages')]
    for site in [s for i, s in enumerate(sites) if s.is_dir() and s not in sites[:i]]:
        for entry in site.iterdir():
            name = entry.name.lower()
            if name.startswith(('convnext_backbone', '__editable__', '_convnext_backbone')) \
                    or name.endswith('.pth') or name == '__pycache__' \
                    or (target / entry.name).exists():
                continue
            (target / entry.name).symlink_to(entry)
    return target


class Installed:
    """A fresh venv with the stack and the installed wheel; ``run`` works in ``cwd`` (outside
    the clone) with no PYTHONPATH."""

    def __init__(self, root, wheel):
        self.root, self.wheel = root, wheel
        env_dir = root / 'env'
        subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True,
                       timeout=120)
        self.python = str(env_dir / 'bin' / 'python')
        self.cwd = root / 'work'
        self.cwd.mkdir()
        self.site = Path(self.output('import sysconfig; print(sysconfig.get_paths()["purelib"])'))
        (self.site / 'pinned_stack.pth').write_text(
            str(stack_without_this_project(root / 'stack')) + '\n')
        self.run('-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(wheel))

    def run(self, *args, timeout=300):
        env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
        proc = subprocess.run([self.python, *args], cwd=self.cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        assert proc.returncode == 0, f'{args} exited {proc.returncode}\n' \
            f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        return proc.stdout + proc.stderr

    def output(self, code):
        return self.run('-c', code).strip()


def has_mim():
    return importlib.util.find_spec('mim') is not None


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp('installed')
    wheel = Path(os.environ['CONVNEXT_WHEEL']) if os.environ.get('CONVNEXT_WHEEL') \
        else build_wheel(root / 'dist')
    return Installed(root, wheel)


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


def test_a_user_config_outside_the_clone_trains_through_the_installed_tools(installed, toy_root):
    # `mim train convnext_backbone` where openmim is installed (requirements/constraints.txt), else
    # the installed train.py itself: the same script either way. (`mim test` runs the installed
    # test.py the same way; test.py on the toy: tests/tools and test_make_demo.py.)
    train_py = installed.site / 'convnext_backbone' / '.mim' / 'tools' / 'train.py'
    (installed.cwd / 'my_toy.py').write_text(USER_CONFIG.format(coco=toy_root / 'coco'))
    command = ['-m', 'mim', 'train', 'convnext_backbone'] if has_mim() else [str(train_py)]
    # The toy inherits the flagship by a relative _base_ link, which inherits ../_base_ pieces
    # and mmdet:: bases: all resolved from the installed copy.
    out = installed.run(*command, 'my_toy.py', '--work-dir', 'work_dirs/my_toy')
    assert str(train_py) in out or not has_mim()
    checkpoint = (installed.cwd / 'work_dirs' / 'my_toy' / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).name == 'epoch_1.pth'
    assert torch.load(checkpoint, map_location='cpu', weights_only=False)['meta']['iter'] == 2


def test_mim_search_lists_the_shipped_configs(installed):
    pytest.importorskip('mim', reason='openmim (requirements/constraints.txt) is not installed')
    out = installed.run('-m', 'mim', 'search', 'convnext_backbone')
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
