"""Following the advice of a message: what it tells the user to pass as ``--cfg-options``,
parsed exactly as our tools parse it (mmengine's ``DictAction`` behind ``cli.arguments``), and
applied to a config as ``load_config`` applies it."""
import argparse
import re
from typing import Dict, List, Mapping, Optional

from convnext_backbone.cli import arguments

_AFTER = re.compile(r'--cfg-options\s+(.*)')
_KEY = re.compile(r'^[A-Za-z_][\w.]*=')


def advised_items(message: str, placeholders: Optional[Mapping[str, str]] = None) -> List[str]:
    """The ``KEY=VALUE`` items the message's ``--cfg-options`` advice names (every occurrence),
    placeholders such as ``PATH`` replaced; a sentence's closing punctuation is not part of
    the value."""
    items = []
    for match in _AFTER.finditer(message):
        for token in match.group(1).split():
            if not _KEY.match(token):
                break
            for name, value in (placeholders or {}).items():
                token = token.replace(f'={name}', f'={value}')
            while token[-1] in '.,;' or (token[-1] == ')' and token.count('(') < token.count(')')):
                token = token[:-1]
            items.append(token)
    return items


def advised_options(message: str, placeholders: Optional[Mapping[str, str]] = None) -> Dict:
    """The advice as the dict our tools pass to ``load_config`` (parsed by their own parser)."""
    items = advised_items(message, placeholders)
    assert items, f'no --cfg-options advice in: {message}'
    parser = argparse.ArgumentParser()
    arguments.add_config(parser)
    return parser.parse_args(['config.py', '--cfg-options', *items]).cfg_options


def follow(cfg, message: str, placeholders: Optional[Mapping[str, str]] = None):
    """``cfg`` with the message's ``--cfg-options`` advice applied (as ``load_config`` does)."""
    cfg.merge_from_dict(advised_options(message, placeholders))
    return cfg
