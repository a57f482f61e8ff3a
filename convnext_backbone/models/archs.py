"""The ConvNeXt architecture table, as data, and its validation.

V1 and V2 share the names ``tiny`` and ``base`` with different meanings (V2 adds GRN and drops
layer scale), so every name is qualified: ``'v1-tiny'``, ``'v2-tiny'``. A bare name is refused with
a message naming the qualified choices, rather than silently guessing a version.

``arch`` may also be a dict ``dict(depths=[...], channels=[...], grn=False)`` describing a custom
network; it is checked here so that a typo fails at build time with a message saying what is wrong.
"""
from typing import Any, Mapping, NamedTuple, Tuple, Union


class ArchSpec(NamedTuple):
    """A resolved architecture: blocks per stage, channels per stage, and whether blocks use GRN.

    ``grn=True`` is the ConvNeXt-V2 block (GRN after the MLP's GELU, no layer scale by default).
    """
    name: str
    depths: Tuple[int, ...]
    channels: Tuple[int, ...]
    grn: bool


def _spec(name: str, depths, channels, grn: bool) -> ArchSpec:
    return ArchSpec(name, tuple(depths), tuple(channels), grn)


_V1_DEEP = (3, 3, 27, 3)
_V2_SMALL = (2, 2, 6, 2)

#: Every named architecture of the ConvNeXt (V1) and ConvNeXt-V2 papers.
ARCH_SETTINGS = {spec.name: spec for spec in (
    _spec('v1-tiny', (3, 3, 9, 3), (96, 192, 384, 768), False),
    _spec('v1-small', _V1_DEEP, (96, 192, 384, 768), False),
    _spec('v1-base', _V1_DEEP, (128, 256, 512, 1024), False),
    _spec('v1-large', _V1_DEEP, (192, 384, 768, 1536), False),
    _spec('v1-xlarge', _V1_DEEP, (256, 512, 1024, 2048), False),
    _spec('v2-atto', _V2_SMALL, (40, 80, 160, 320), True),
    _spec('v2-femto', _V2_SMALL, (48, 96, 192, 384), True),
    _spec('v2-pico', _V2_SMALL, (64, 128, 256, 512), True),
    _spec('v2-nano', (2, 2, 8, 2), (80, 160, 320, 640), True),
    _spec('v2-tiny', (3, 3, 9, 3), (96, 192, 384, 768), True),
    _spec('v2-base', _V1_DEEP, (128, 256, 512, 1024), True),
    _spec('v2-large', _V1_DEEP, (192, 384, 768, 1536), True),
    _spec('v2-huge', _V1_DEEP, (352, 704, 1408, 2816), True),
)}

_DICT_KEYS = ('depths', 'channels', 'grn', 'name')
_REQUIRED_KEYS = ('depths', 'channels')


def arch_names() -> Tuple[str, ...]:
    """The valid qualified arch names, in table order."""
    return tuple(ARCH_SETTINGS)


def _resolve_name(arch: str) -> ArchSpec:
    key = arch.strip().lower()
    if key in ARCH_SETTINGS:
        return ARCH_SETTINGS[key]
    valid = ', '.join(repr(n) for n in ARCH_SETTINGS)
    matches = [n for n in ARCH_SETTINGS if n.split('-', 1)[1] == key]
    if matches:
        choices = ' or '.join(repr(n) for n in matches)
        raise ValueError(
            f"ConvNeXt arch {arch!r} is ambiguous or unversioned: write {choices}. "
            "ConvNeXt-V1 ('v1-*') and ConvNeXt-V2 ('v2-*', with GRN and no layer scale) "
            f"are different networks. Valid archs: {valid}.")
    raise ValueError(f'Unknown ConvNeXt arch {arch!r}. Valid archs: {valid}; '
                     "or a dict(depths=[...], channels=[...], grn=False).")


def _check_int_list(key: str, value: Any) -> Tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, '__len__'):
        raise ValueError(f'ConvNeXt arch dict: {key!r} must be a list of positive ints, '
                         f'got {value!r}.')
    items = tuple(value)
    bad = [v for v in items if isinstance(v, bool) or not isinstance(v, int) or v <= 0]
    if bad:
        raise ValueError(f'ConvNeXt arch dict: {key!r} must be a list of positive ints, '
                         f'got {list(items)!r} (bad entries: {bad!r}).')
    return items


def _resolve_dict(arch: Mapping) -> ArchSpec:
    unknown = sorted(set(arch) - set(_DICT_KEYS))
    if unknown:
        raise ValueError(f'ConvNeXt arch dict has unknown keys {unknown}; '
                         f'allowed keys: {list(_DICT_KEYS)}.')
    missing = [k for k in _REQUIRED_KEYS if k not in arch]
    if missing:
        raise ValueError(f'ConvNeXt arch dict is missing keys {missing}; it needs '
                         "dict(depths=[...], channels=[...]) and optionally grn=True|False.")
    depths = _check_int_list('depths', arch['depths'])
    channels = _check_int_list('channels', arch['channels'])
    if len(depths) != len(channels):
        raise ValueError(
            f'ConvNeXt arch dict: depths and channels must have the same length (one entry per '
            f'stage), got {len(depths)} depths {list(depths)} and {len(channels)} channels '
            f'{list(channels)}.')
    if len(depths) < 2:
        raise ValueError(f'ConvNeXt arch dict needs at least 2 stages, got {len(depths)}.')
    grn = arch.get('grn', False)
    if not isinstance(grn, bool):
        raise ValueError(f"ConvNeXt arch dict: 'grn' must be True or False, got {grn!r}.")
    return ArchSpec(str(arch.get('name', 'custom')), depths, channels, grn)


def resolve_arch(arch: Union[str, Mapping, ArchSpec]) -> ArchSpec:
    """Turn an arch name (``'v1-tiny'``), an arch dict or an :class:`ArchSpec` into an ArchSpec.

    Raises ``ValueError`` naming the valid choices for unknown or bare names, and naming the
    offending keys/values for a malformed dict.
    """
    if isinstance(arch, ArchSpec):
        return _resolve_dict(arch._asdict())
    if isinstance(arch, str):
        return _resolve_name(arch)
    if isinstance(arch, Mapping):
        return _resolve_dict(arch)
    raise TypeError(f'ConvNeXt arch must be a name such as {arch_names()[0]!r}, or a '
                    f'dict(depths=[...], channels=[...], grn=False); got {type(arch).__name__}.')
