"""The config values our components read, checked for type and range before anything is built.

Each of our registered components declares what it reads once, beside itself
(``config_schema()``: ``convnext_backbone.config_schema``). This walker goes through the whole
config, finds every dict that names one of our components (``type=`` or ``constructor=``, as
``convnext_backbone.X``, or bare in a config whose default scope is ours) and checks that dict
against the component's schema. A wrong value is one :class:`ConfigValueError` line naming the
key as written in the config and the ``--cfg-options`` that fixes it, instead of a
``TypeError`` from deep inside the optimizer build (``lr='abc'``: "can't multiply sequence by
non-int of type 'float'") or a range error without the key, minutes later.

Nothing here lists keys: a component that reads a new value declares it in its schema.
"""
from typing import Dict, Iterator, Optional, Tuple

from mmengine.config import Config

from ..config_schema import ConfigValueError, Schema, problems

__all__ = ['ConfigValueError', 'check_config_values', 'component_schemas']

_PREFIX = 'convnext_backbone.'
_NAMING_KEYS = ('type', 'constructor')


def component_schemas() -> Dict[str, Schema]:
    """``{registered name: schema}`` of every component of ours that declares one."""
    from .. import registry
    found = {}
    for reg in (registry.MODELS, registry.OPTIM_WRAPPER_CONSTRUCTORS, registry.OPTIM_WRAPPERS,
                registry.HOOKS, registry.TRANSFORMS):
        reg.import_from_location()
        for name, cls in reg.module_dict.items():
            declare = getattr(cls, 'config_schema', None)
            if callable(declare):
                found[name] = declare()
    return found


def _ours(value, scope: Optional[str]) -> Optional[str]:
    if not isinstance(value, str):
        return None
    if value.startswith(_PREFIX):
        return value[len(_PREFIX):]
    return value if scope == 'convnext_backbone' and '.' not in value else None


def _named(node, where: str, scope: Optional[str]) -> Iterator[Tuple[str, str, dict]]:
    """``(config path, our component's name, its dict)`` for every dict naming one of ours."""
    if isinstance(node, dict):
        for key in _NAMING_KEYS:
            name = _ours(node.get(key), scope)
            if name:
                yield where, name, node
        for key, value in node.items():
            yield from _named(value, f'{where}.{key}' if where else str(key), scope)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _named(value, f'{where}.{i}', scope)


def config_value_problems(cfg: Config) -> Iterator[str]:
    """One message per value of our components that its schema refuses, in config order."""
    schemas = component_schemas()
    tree = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    for where, name, node in _named(tree, '', cfg.get('default_scope')):
        schema = schemas.get(name)
        if schema:
            for _, message in problems(schema, node, where):
                yield message


def check_config_values(cfg: Config) -> None:
    """Raise :class:`ConfigValueError` for the first value of our components that is of the
    wrong type or outside its range (see the module docstring)."""
    for message in config_value_problems(cfg):
        raise ConfigValueError(message)
