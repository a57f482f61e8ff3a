"""The model index: ``model-index.yml`` and one ``metafile.yml`` per folder of ``configs/``.

    python tools/model_index.py          # check: every config listed once, every entry a config
    python tools/model_index.py --add    # list the configs not listed yet, then check

They ship in the package (``convnext_backbone/.mim``) and are what ``mim search convnext_backbone``
shows; mmengine reads them too when a config names ``convnext_backbone::...``. Each entry names its
config, task(s), dataset, parameters and FLOPs (measured: ``tools/get_flops.py``, see
docs/model_zoo.md) and the published result, or none where nothing is published; an entry whose
model was released names the released checkpoint's URL as ``Weights`` (what ``mim download`` and
``tools/test.py CONFIG released`` fetch), and then has a published result. ``--add``
derives the task, dataset and collection of a new config from the config itself and counts its
parameters on the meta device; its FLOPs and result stay empty until measured or published
(fill them in by hand). A config at the top of ``configs/`` is listed in ``configs/metafile.yml``.
"""
import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INDEX = 'model-index.yml'
METAFILE = 'metafile.yml'
NOT_CONFIGS = {'_base_', '__pycache__'}
PAPER = {'Title': 'A ConvNet for the 2020s', 'URL': 'https://arxiv.org/abs/2201.03545'}
PAPER_V2 = {'Title': 'ConvNeXt V2: Co-designing and Scaling ConvNets with Masked Autoencoders',
            'URL': 'https://arxiv.org/abs/2301.00808'}
# Collection names: 'Mask R-CNN ConvNeXt', 'UperNet ConvNeXt V2', ... (the detector's type, or for
# an EncoderDecoder its decode head's; other types keep their own name).
DISPLAY = {'MaskRCNN': 'Mask R-CNN', 'CascadeRCNN': 'Cascade Mask R-CNN', 'UPerHead': 'UperNet',
           'DepthwiseSeparableASPPHead': 'DeepLabV3+', 'ASPPHead': 'DeepLabV3',
           'Mask2FormerHead': 'Mask2Former'}
REQUIRED = ('Name', 'In Collection', 'Config', 'Metadata', 'Results')
REQUIRED_METADATA = ('Training Data', 'Parameters (M)', 'FLOPs (G)')


def config_files(root=ROOT):
    """Every config users can run or inherit (not the ``_base_`` pieces), relative to ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in (root / 'configs').rglob('*.py')
                  if not NOT_CONFIGS & set(p.relative_to(root / 'configs').parts))


def metafile_for(config):
    """``configs/<folder>/metafile.yml`` for a config in a folder, else ``configs/metafile.yml``."""
    parts = Path(config).parts
    return '/'.join(parts[:2] + (METAFILE,)) if len(parts) > 2 else f'configs/{METAFILE}'


def read_yaml(path):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def write_yaml(path, data):
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True, width=100)


def entries(root=ROOT):
    """(metafile, model entry) for every model the index imports."""
    found = []
    for metafile in read_yaml(root / INDEX).get('Import', []):
        if (root / metafile).is_file():
            found += [(metafile, model) for model in read_yaml(root / metafile).get('Models', [])]
    return found


def problems(root=ROOT):
    """What is wrong with the index, one line each (nothing: an empty list)."""
    found = []
    imported = read_yaml(root / INDEX).get('Import', []) if (root / INDEX).is_file() else None
    if imported is None:
        return [f'{INDEX} is missing']
    for metafile in imported:
        if not (root / metafile).is_file():
            found.append(f'{INDEX} imports {metafile}, which does not exist')
    on_disk = sorted(p.relative_to(root).as_posix() for p in (root / 'configs').rglob(METAFILE))
    found += [f'{m} is not imported by {INDEX}' for m in on_disk if m not in imported]
    listed, weight_urls = {}, {}
    for metafile, model in entries(root):
        name = model.get('Name', '?')
        found += [f'{metafile}: {name} has no {key!r}' for key in REQUIRED if key not in model]
        metadata = model.get('Metadata') or {}
        found += [f'{metafile}: {name} has no Metadata {key!r}' for key in REQUIRED_METADATA
                  if key not in metadata]
        collections = {c['Name'] for c in read_yaml(root / metafile).get('Collections', [])}
        if model.get('In Collection') not in collections:
            found.append(f"{metafile}: {name}'s collection {model.get('In Collection')!r} is not "
                         'among its Collections')
        found += weights_problems(metafile, model, weight_urls)
        config = model.get('Config')
        if config in listed:
            found.append(f'{config} is listed twice ({listed[config]} and {metafile})')
        listed[config] = metafile
        if config and not (root / config).is_file():
            found.append(f'{metafile}: {name} names {config}, which does not exist')
        elif config and metafile_for(config) != metafile:
            found.append(f'{config} is listed in {metafile}, not {metafile_for(config)}')
    found += [f'{c} is not listed (python tools/model_index.py --add)'
              for c in config_files(root) if c not in listed]
    found += [f'the file name {name} ends different Weights URLs ({", ".join(sorted(urls))}): '
              'downloads are cached by file name, so one would be taken for the other'
              for name, urls in weight_urls.items() if len(urls) > 1]
    return found


def weights_problems(metafile, model, weight_urls):
    """What is wrong with an entry's ``Weights`` (none: fine); records its URL by file name."""
    weights = model.get('Weights')
    if weights is None:
        return []
    name = model.get('Name', '?')
    if not isinstance(weights, str) or not weights.startswith(('https://', 'http://')):
        return [f'{metafile}: {name}\'s Weights {weights!r} is not an http(s) URL']
    weight_urls.setdefault(weights.rsplit('/', 1)[-1], set()).add(weights)
    if not any(result.get('Metrics') for result in model.get('Results') or []):
        return [f'{metafile}: {name} names released Weights but no published result (Metrics)']
    return []


# --add: describe a new config from the config itself -------------------------------------------

def describe(config, root=ROOT):
    """A metafile entry and its collection for ``config``, read from the config (task from the
    evaluator, dataset from the dataset type, parameters counted on the meta device)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import convnext_backbone  # noqa: F401  (registers ours; 'convnext_backbone::' bases)

    cfg = Config.fromfile(root / config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    cfg.model.backbone.init_cfg = None
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # wrappers (RepeatDataset, ConcatDataset, ...)
        dataset = dataset.dataset
    dataset_name = {'CocoDataset': 'COCO', 'CocoPanopticDataset': 'COCO',
                    'ADE20KDataset': 'ADE20K'}.get(dataset.type,
                                                                          dataset.type)
    evaluators = cfg.get('val_evaluator', {})
    evaluators = evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]
    metrics, types = [], [e.get('type', '') for e in evaluators]
    for evaluator in evaluators:
        found = evaluator.get('metric', [])
        metrics += [found] if isinstance(found, str) else list(found)
    if any(t.endswith('IoUMetric') for t in types):
        tasks = ['Semantic Segmentation']
    elif any('Panoptic' in t for t in types):
        tasks = ['Panoptic Segmentation'] + (['Instance Segmentation'] if 'segm' in metrics else [])
    else:
        tasks = ['Object Detection'] + (['Instance Segmentation'] if 'segm' in metrics else [])
    arch = cfg.model.backbone.get('arch', '')
    v2 = isinstance(arch, str) and arch.startswith('v2')
    kind = cfg.model.decode_head.type if cfg.model.type == 'EncoderDecoder' else cfg.model.type
    collection = f"{DISPLAY.get(kind, kind)} ConvNeXt{' V2' if v2 else ''}"
    entry = {
        'Name': Path(config).stem,
        'In Collection': collection,
        'Config': config,
        'Metadata': {'Training Data': dataset_name, 'Backbone': str(arch),
                     'Parameters (M)': round(params / 1e6, 2), 'FLOPs (G)': None},
        'Results': [{'Task': task, 'Dataset': dataset_name, 'Metrics': None} for task in tasks],
    }
    return entry, {'Name': collection, 'Metadata': {'Training Data': dataset_name},
                   'Paper': PAPER_V2 if v2 else PAPER, 'README': 'docs/model_zoo.md'}


def add_missing(root=ROOT):
    """Append an entry for every config not listed yet; returns the configs added."""
    listed = {model.get('Config') for _, model in entries(root)}
    added = []
    for config in config_files(root):
        if config in listed:
            continue
        entry, collection = describe(config, root)
        metafile = metafile_for(config)
        data = read_yaml(root / metafile) if (root / metafile).is_file() else {}
        data.setdefault('Collections', [])
        if collection['Name'] not in {c['Name'] for c in data['Collections']}:
            data['Collections'].append(collection)
        data.setdefault('Models', []).append(entry)
        write_yaml(root / metafile, {'Collections': data['Collections'], 'Models': data['Models']})
        index = read_yaml(root / INDEX) if (root / INDEX).is_file() else {}
        index.setdefault('Import', [])
        if metafile not in index['Import']:
            index['Import'].append(metafile)
            write_yaml(root / INDEX, index)
        added.append(config)
    return added


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--add', action='store_true',
                        help='list the configs not listed yet (FLOPs and results left empty)')
    args = parser.parse_args(argv)
    if args.add:
        for config in add_missing():
            print(f'added {config} to {metafile_for(config)}: fill in its FLOPs (G) '
                  '(tools/get_flops.py) and its published result, if any')
    found = problems()
    for line in found:
        print(f'error: {line}', file=sys.stderr)
    if not found:
        print(f'{INDEX}: {len(entries())} configs, all listed')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
