"""Mistaken variants of a config and of a COCO-style data set, made by rule (the generative
reliability test, test_generated_mistakes.py).

A variant is a name and a function that changes a copy: ``config(cfg_dict)`` for config
variants (the whole config, as the tools see it after ``_base_`` merging), ``data(root)`` for
data variants (files on disk). Rules, applied to every key the tools read:

* config values: each leaf is deleted, set to ``None``, retyped (a number becomes a string, a
  string a number, a list a dict ...), made negative or zero (numbers), misspelt (strings),
  emptied (lists, dicts); whole sections are deleted or retyped;
* annotation JSON: each field of an image, an annotation and a category is deleted, nulled,
  retyped or made negative; the top-level lists are deleted, emptied or retyped;
* files: the annotation file missing, empty, truncated, not JSON, binary; an image missing,
  empty, not an image, truncated.
"""
import json
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

#: The config sections our tools and the Runner read from a training config.
SECTIONS = ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator', 'train_cfg',
            'val_cfg', 'optim_wrapper', 'param_scheduler', 'default_hooks', 'custom_hooks',
            'default_scope', 'custom_imports', 'load_from', 'resume', 'randomness', 'work_dir',
            'env_cfg', 'log_processor', 'auto_scale_lr')

#: Leaves not worth a variant each (sizes of the same list, repeated entries).
_SKIP_PARTS = ('scales', 'meta_keys', 'mean', 'std', 'betas', 'ratios', 'strides',
               'target_means', 'target_stds', 'milestones', 'scale')


def _leaves(node, path=()) -> Iterator[Tuple[tuple, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(node, (list, tuple)) and node and isinstance(node[0], dict):
        for i, value in enumerate(node):
            yield from _leaves(value, path + (i,))
    else:
        yield path, node


def _retyped(value) -> List[Tuple[str, object]]:
    """The mistaken values a user could write in place of ``value``."""
    if isinstance(value, bool):
        return [('a string', 'yes'), ('a number', 2)]
    if isinstance(value, (int, float)):
        return [('negative', -value if value else -1), ('a string', str(value)),
                ('zero', 0), ('a list', [value])]
    if isinstance(value, str):
        return [('misspelt', value[:-1] + value[-1:].upper() + 'x'), ('a number', 3),
                ('empty', '')]
    if isinstance(value, (list, tuple)):
        return [('empty', []), ('a string', 'x'), ('a dict', {})]
    return [('a string', 'x')]


def _get_parent(cfg, path):
    node = cfg
    for key in path[:-1]:
        node = node[key]
    return node


def _setter(path, value, delete=False) -> Callable[[dict], None]:
    def change(cfg):
        parent = _get_parent(cfg, path)
        if delete:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return change


def config_variants(cfg: dict, every: int = 1) -> List[Tuple[str, Callable[[dict], None]]]:
    """Variants of every leaf of the sections the tools read (each ``every``-th mistake of
    each leaf's list, cycling, so that a subset still covers every leaf and every rule)."""
    variants = []
    counter = 0
    for section in SECTIONS:
        if section not in cfg:
            continue
        variants.append((f'{section}: deleted', _setter((section,), None, delete=True)))
        variants.append((f'{section}: a string', _setter((section,), 'x')))
        for path, value in _leaves(cfg[section], (section,)):
            if len(path) < 2 or any(str(p) in _SKIP_PARTS for p in path):
                continue
            name = '.'.join(map(str, path))
            rules = [('deleted', None, True), ('None', None, False)] + \
                [(what, new, False) for what, new in _retyped(value)]
            for what, new, delete in rules:
                counter += 1
                if counter % every == 0:
                    variants.append((f'{name}: {what}', _setter(path, new, delete)))
    return variants


# Data ------------------------------------------------------------------------------------------

def _edit_json(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(root: Path):
        path = root / 'annotations' / 'instances_train2017.json'
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return change


def _write_ann(content: bytes) -> Callable[[Path], None]:
    def change(root: Path):
        path = root / 'annotations' / 'instances_train2017.json'
        path.write_bytes(content(path.read_bytes()) if callable(content) else content)
    return change


def _image(how: str) -> Callable[[Path], None]:
    def change(root: Path):
        path = root / 'train2017' / '000001.jpg'
        if how == 'missing':
            path.unlink()
        elif how == 'empty':
            path.write_bytes(b'')
        elif how == 'not an image':
            path.write_bytes(b'<html>404 Not Found</html>')
        elif how == 'truncated':
            path.write_bytes(path.read_bytes()[:200])
        elif how == 'a folder':
            path.unlink()
            path.mkdir()
    return change


def _field_rules(value) -> List[Tuple[str, object, bool]]:
    return [('deleted', None, True), ('null', None, False)] + \
        [(what, new, False) for what, new in _retyped(value)]


def data_variants(sample: dict) -> List[Tuple[str, Callable[[Path], None]]]:
    """Variants of the annotation file (every field of its first image, annotation and
    category; its top-level lists) and of the files on disk."""
    variants = []
    for part in ('images', 'annotations', 'categories'):
        for key, value in sample[part][0].items():
            for what, new, delete in _field_rules(value):
                def edit(data, part=part, key=key, new=new, delete=delete):
                    if delete:
                        del data[part][0][key]
                    else:
                        data[part][0][key] = new
                variants.append((f'{part}[0].{key}: {what}', _edit_json(edit)))
        for what, new, delete in [('deleted', None, True), ('empty', [], False),
                                  ('a dict', {}, False), ('null', None, False)]:
            def edit(data, part=part, new=new, delete=delete):
                if delete:
                    del data[part]
                else:
                    data[part] = new
            variants.append((f'{part}: {what}', _edit_json(edit)))
    variants += [
        ('annotation file: missing', lambda root: (root / 'annotations' /
                                                   'instances_train2017.json').unlink()),
        ('annotation file: empty', _write_ann(b'')),
        ('annotation file: truncated', _write_ann(lambda b: b[:len(b) // 2])),
        ('annotation file: not JSON', _write_ann(b'images: [a.jpg]\n')),
        ('annotation file: binary', _write_ann(bytes(range(256)) * 4)),
        ('annotation file: a JSON list', _write_ann(b'[]')),
        ('annotation file: a JSON string', _write_ann(b'"instances"')),
    ]
    variants += [(f'image 000001.jpg: {how}', _image(how))
                 for how in ('missing', 'empty', 'not an image', 'truncated', 'a folder')]
    return variants
