"""Installs convnext_backbone: ConvNeXt (V1/V2) for mmdet 3.x and mmsegmentation 1.x.

Version ranges here are loose on purpose; the exact, verified stack is pinned once in
requirements/constraints.txt and installed by tools/setup_env.sh.

The configs, the tools and the model index ship inside the package, as OpenMMLab packages ship
theirs: ``convnext_backbone/.mim/{configs,tools,model-index.yml}``. In the clone (and so in an
editable install) those three are committed links to ``configs/``, ``tools/`` and
``model-index.yml``; a wheel gets copies (``BuildPyWithMim``), built from the clone or from the
sdist, which carries the originals (MANIFEST.in). That is what ``_base_ =
'convnext_backbone::...'``, ``mim train convnext_backbone`` and ``mim search`` read.
"""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'convnext_backbone' / 'version.py').read_text()).group(1)

# What convnext_backbone/.mim holds: the source next to setup.py -> the name inside .mim.
MIM_CONTENT = ('configs', 'tools', 'model-index.yml')
NOT_SHIPPED = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pyo')


class BuildPyWithMim(build_py):
    """build_py that also puts copies of configs/, tools/ and model-index.yml into the built
    package's .mim folder (links would not survive a wheel). An editable build needs nothing:
    the package's committed .mim links point at the clone."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = Path(self.build_lib) / 'convnext_backbone' / '.mim'
        if mim.is_symlink() or mim.is_file():
            mim.unlink()
        shutil.rmtree(mim, ignore_errors=True)  # links copied by an earlier build, or stale copies
        mim.mkdir(parents=True)
        for name in MIM_CONTENT:
            source = HERE / name
            if not source.exists():
                raise FileNotFoundError(f'{source} is missing: a wheel without it could not '
                                        f"resolve 'convnext_backbone::' configs.")
            if source.is_dir():
                shutil.copytree(source, mim / name, ignore=NOT_SHIPPED)
            else:
                shutil.copy2(source, mim / name)


EXTRAS = {
    'mmdet': ['mmdet>=3.0,<3.4', 'pycocotools'],
    'mmseg': ['mmsegmentation>=1.0,<1.3', 'ftfy', 'regex'],
    'safetensors': ['safetensors'],
    'tests': ['pytest', 'pytest-xdist', 'timm>=0.9', 'mmpretrain>=1.0', 'safetensors',
              'openmim'],
    'deploy': ['onnx', 'onnxruntime'],
    'mim': ['openmim'],
    'lint': ['ruff'],
}
EXTRAS['all'] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name='convnext_backbone',
    version=VERSION,
    description=('ConvNeXt V1/V2 backbones, layer-wise LR decay and paper configs for mmdet 3.x '
                 'and mmseg 1.x'),
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['convnext_backbone', 'convnext_backbone.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.5', 'mmengine>=0.10,<0.11', 'mmcv>=2.0,<2.2', 'numpy'],
    extras_require=EXTRAS,
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,  # configs and tools are read as files
)
