"""What the config values a component reads may be: declared once, beside the component.

A component (the backbone, the layer-decay constructor, the optim wrapper, the hooks) names the
values it reads in a ``CONFIG_SCHEMA`` class attribute: ``{key: Value}``, keys relative to the
config dict that names the component (``'drop_path_rate'`` for the backbone's dict,
``'optimizer.lr'`` / ``'paramwise_cfg.decay_rate'`` for the constructor's ``optim_wrapper``).
Each :class:`Value` says what it accepts (type and range, and, where the range depends on
another value, such as ``frozen_stages`` on the arch's number of stages, a check that reads the
sibling values), what it is for and a valid example for the fix.

One walker (``convnext_backbone.cli.config_values``) checks every config against the schemas of
the components it names, before anything is built; a component may check its own values with
:func:`check_values` too, so both say the same. A problem is one :class:`ConfigValueError` line:
the key as written in the config, the value, what it must be, and the ``--cfg-options`` that
fixes it.
"""
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple

_MISSING = object()


class ConfigValueError(ValueError, TypeError):
    """A config value of the wrong type or outside its range; the message names the key and the
    fix. (Still a ValueError / TypeError for code that catches those.)"""


@dataclass(frozen=True)
class Value:
    """One config value a component reads.

    Args:
        must_be: what it must be, as the message says it (``'a number in (0, 1]'``).
        accepts: ``value -> bool``: the type and range.
        example: a valid value, written into the suggested fix.
        about: what it is for / what the recipes use (optional, for the message).
        required: the component cannot run without it (otherwise absent means its default).
        depends: ``(value, siblings) -> problem or None``: a check against other values of the
            same dict (e.g. a range given by the arch); runs after ``accepts`` passed.
        fix: ``(siblings) -> example``: a valid value for this config (e.g. the arch's last
            stage), instead of ``example``.
    """
    must_be: str
    accepts: Callable[[Any], bool]
    example: Any
    about: str = ''
    required: bool = False
    depends: Optional[Callable[[Any, Mapping], Optional[str]]] = None
    fix: Optional[Callable[[Mapping], Any]] = None


Schema = Dict[str, Value]


def is_number(value) -> bool:
    """int or float (not bool: ``True`` is an int to Python, never a rate to a user)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def number(low: Optional[float] = None, high: Optional[float] = None, *, low_open=False,
           high_open=False, integer=False, none=False, example, about='',
           required=False) -> Value:
    """A number (``integer``: an int) within ``[low, high]`` (``*_open``: the bound excluded);
    ``none``: ``None`` is accepted too."""
    def accepts(value) -> bool:
        if value is None:
            return none
        if not (is_int(value) if integer else is_number(value)):
            return False
        if low is not None and (value <= low if low_open else value < low):
            return False
        return high is None or not (value >= high if high_open else value > high)
    kind = 'an int' if integer else 'a number'
    if low is not None and high is not None:
        rng = f' in {"(" if low_open else "["}{low:g}, {high:g}{")" if high_open else "]"}'
    elif low is not None:
        rng = f' {">" if low_open else ">="} {low:g}'
    elif high is not None:
        rng = f' {"<" if high_open else "<="} {high:g}'
    else:
        rng = ''
    return Value(kind + rng + (' or None' if none else ''), accepts, example, about, required)


def choice(values: Sequence, *, example=None, about='', required=False) -> Value:
    """One of ``values`` (compared with ``==``; strings case-sensitively)."""
    values = tuple(values)
    return Value(f'one of {", ".join(map(repr, values))}',
                 lambda value: any(value == v and type(value) is type(v) for v in values),
                 values[0] if example is None else example, about, required)


def boolean(*, example=True, about='') -> Value:
    return Value('True or False', lambda value: isinstance(value, bool), example, about)


def sequence(length: int, each: Value, *, example, about='') -> Value:
    """A list or tuple of ``length`` items, each accepted by ``each``."""
    return Value(f'{length} values, each {each.must_be}',
                 lambda value: isinstance(value, (list, tuple)) and len(value) == length
                 and all(each.accepts(v) for v in value), example, about)


# Checking ----------------------------------------------------------------------------------------

def lookup(node: Mapping, dotted: str):
    """``node['a']['b']`` for ``'a.b'``; :data:`_MISSING` where a level is absent."""
    for part in dotted.split('.'):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def cfg_option(value) -> str:
    """``value`` as mmengine's ``--cfg-options`` parser reads it back (strings bare, tuples
    and lists without spaces)."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(cfg_option(v) for v in value)
        if isinstance(value, list):
            return f'[{inner}]'
        return f'({inner}{"," if len(value) == 1 else ""})'
    return str(value)


def problems(schema: Schema, node: Mapping, where: str) -> Iterator[Tuple[str, str]]:
    """``(key as written, message)`` for each value of ``node`` that its schema refuses."""
    for key, spec in schema.items():
        value = lookup(node, key)
        path = f'{where}.{key}' if where else key
        if value is _MISSING:
            if spec.required:
                yield path, (f'{path} is missing: it must be {spec.must_be}'
                             f'{_about(spec)}. Fix: --cfg-options {path}='
                             f'{cfg_option(spec.example)}')
            continue
        if not spec.accepts(value):
            problem = f'must be {spec.must_be}'
        elif spec.depends is not None:
            problem = spec.depends(value, node)
            if problem is None:
                continue
        else:
            continue
        example = spec.fix(node) if spec.fix is not None else spec.example
        yield path, (f'{path} = {value!r}: {problem}{_about(spec)}. Fix: --cfg-options '
                     f'{path}={cfg_option(example)}')


def _about(spec: Value) -> str:
    return f' ({spec.about})' if spec.about else ''


def check_values(schema: Schema, node: Mapping, where: str,
                 error: type = ConfigValueError) -> None:
    """Raise ``error`` with the first problem of ``node`` against ``schema`` (see
    :func:`problems`)."""
    for _, message in problems(schema, node, where):
        raise error(message)
