"""Shared helpers of the config tests: find, load and build the shipped configs without weights."""
import copy
import functools
import importlib
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import shipped_configs  # noqa: F401  (the config tests import it from here)

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs'


@functools.lru_cache(maxsize=None)
def _read(path):
    # mmengine re-reads every model-index YAML of mmdet/mmseg for each 'mmdet::' base (about
    # 0.25 s a base): read each config once per test run and hand out copies.
    return Config.fromfile(REPO / path)


def read(path):
    """A fresh copy of ``Config.fromfile(path)``, exactly as shipped."""
    return copy.deepcopy(_read(str(path)))


def load(path):
    """The config with the backbone's pretrained weights switched off (tests never download)."""
    cfg = read(path)
    cfg.model.backbone.init_cfg = None
    return cfg


def registry(cfg):
    """The MODELS registry of the config's default scope (mmdet or mmseg), scope activated."""
    init_default_scope(cfg.default_scope)
    return importlib.import_module(f'{cfg.default_scope}.registry').MODELS


def build(cfg, device='cpu'):
    """Build ``cfg.model`` in its scope; ``device='meta'`` allocates no parameter memory."""
    models = registry(cfg)
    with torch.device(device):
        return models.build(cfg.model)
