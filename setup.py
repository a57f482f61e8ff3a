"""Installs convnext_backbone: ConvNeXt (V1/V2) for mmdet 3.x and mmsegmentation 1.x.

Version ranges here are loose on purpose; the exact, verified stack is pinned once in
requirements/constraints.txt and installed by tools/setup_env.sh.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'convnext_backbone' / 'version.py').read_text()).group(1)

EXTRAS = {
    'mmdet': ['mmdet>=3.0,<3.4', 'pycocotools'],
    'mmseg': ['mmsegmentation>=1.0,<1.3', 'ftfy', 'regex'],
    'safetensors': ['safetensors'],
    'tests': ['pytest', 'pytest-xdist', 'timm>=0.9', 'mmpretrain>=1.0', 'safetensors'],
    'deploy': ['onnx', 'onnxruntime'],
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
)
