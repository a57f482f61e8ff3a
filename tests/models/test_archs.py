"""The arch table and ``resolve_arch``: every named arch, and every way to get ``arch`` wrong."""
import pytest

from convnext_backbone.models import ARCH_SETTINGS, ArchSpec, arch_names, resolve_arch

# Written out independently from the papers (not read from the package's table).
EXPECTED = {
    'v1-tiny': ((3, 3, 9, 3), (96, 192, 384, 768), False),
    'v1-small': ((3, 3, 27, 3), (96, 192, 384, 768), False),
    'v1-base': ((3, 3, 27, 3), (128, 256, 512, 1024), False),
    'v1-large': ((3, 3, 27, 3), (192, 384, 768, 1536), False),
    'v1-xlarge': ((3, 3, 27, 3), (256, 512, 1024, 2048), False),
    'v2-atto': ((2, 2, 6, 2), (40, 80, 160, 320), True),
    'v2-femto': ((2, 2, 6, 2), (48, 96, 192, 384), True),
    'v2-pico': ((2, 2, 6, 2), (64, 128, 256, 512), True),
    'v2-nano': ((2, 2, 8, 2), (80, 160, 320, 640), True),
    'v2-tiny': ((3, 3, 9, 3), (96, 192, 384, 768), True),
    'v2-base': ((3, 3, 27, 3), (128, 256, 512, 1024), True),
    'v2-large': ((3, 3, 27, 3), (192, 384, 768, 1536), True),
    'v2-huge': ((3, 3, 27, 3), (352, 704, 1408, 2816), True),
}


def test_table_has_exactly_the_paper_archs():
    assert set(ARCH_SETTINGS) == set(EXPECTED)
    assert set(arch_names()) == set(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_every_arch_resolves(name):
    spec = resolve_arch(name)
    assert isinstance(spec, ArchSpec)
    assert (spec.name, spec.depths, spec.channels, spec.grn) == (name,) + EXPECTED[name]


def test_names_are_case_and_space_insensitive():
    assert resolve_arch(' V2-Atto ') == resolve_arch('v2-atto')


@pytest.mark.parametrize('bare', ['tiny', 'base', 'large'])
def test_bare_name_shared_by_v1_and_v2_names_both(bare):
    with pytest.raises(ValueError, match=rf"'v1-{bare}' or 'v2-{bare}'"):
        resolve_arch(bare)


@pytest.mark.parametrize('bare,qualified', [('small', 'v1-small'), ('atto', 'v2-atto')])
def test_bare_name_of_one_version_names_it(bare, qualified):
    with pytest.raises(ValueError, match=f"write '{qualified}'"):
        resolve_arch(bare)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown ConvNeXt arch 'v3-tiny'.*'v1-tiny'.*'v2-huge'"):
        resolve_arch('v3-tiny')


def test_dict_arch():
    spec = resolve_arch(dict(depths=[1, 2], channels=(8, 16), grn=True))
    assert spec == ArchSpec('custom', (1, 2), (8, 16), True)
    assert resolve_arch(dict(depths=[1, 1], channels=[4, 8])).grn is False
    assert resolve_arch(spec) == spec


@pytest.mark.parametrize('arch,match', [
    (dict(channels=[8, 16]), r"missing keys \['depths'\]"),
    (dict(depths=[1, 1]), r"missing keys \['channels'\]"),
    (dict(depths=[1, 1], channels=[8, 16], widths=[1]), r"unknown keys \['widths'\]"),
    (dict(depths=[1, 1, 1], channels=[8, 16]), 'same length.*3 depths.*2 channels'),
    (dict(depths=[1, 0], channels=[8, 16]), r'positive ints.*bad entries: \[0\]'),
    (dict(depths=[1, 1], channels=[8, 16.0]), r'positive ints.*bad entries: \[16.0\]'),
    (dict(depths=[1, True], channels=[8, 16]), 'positive ints'),
    (dict(depths=3, channels=[8, 16]), "'depths' must be a list of positive ints"),
    (dict(depths=[2], channels=[8]), 'at least 2 stages'),
    (dict(depths=[1, 1], channels=[8, 16], grn='yes'), "'grn' must be True or False"),
])
def test_inconsistent_arch_dict(arch, match):
    with pytest.raises(ValueError, match=match):
        resolve_arch(arch)


def test_arch_of_wrong_type():
    with pytest.raises(TypeError, match='must be a name'):
        resolve_arch(3)
