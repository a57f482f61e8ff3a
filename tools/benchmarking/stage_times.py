"""Where, stage by stage, one implementation is faster than another (``--per-stage``).

The op profile (:mod:`.op_profile`) says which kinds of op take the time; this says which part
of the network: the stem, each stage's blocks, each downsampling layer and the output norms,
timed by forward hooks during the timed inference steps themselves, so each part gets paired
per-repetition ratios (:mod:`.paired`) like the whole step. Each implementation's modules are found
by name; the parts are the same computation in ours and in the peers (the stem is conv + LN,
a downsampling layer LN + conv), so a part's ratio says where ours gains or loses.
"""
import re
import statistics
import time
from collections import defaultdict
from typing import Dict, List

from torch import nn

from .measure import Case
from .paired import format_ratio

# module-name patterns of each implementation's parts -> part label ({} = the stage index)
PARTS = {
    'ours': [(r'downsample_layers\.0', 'stem'), (r'downsample_layers\.(\d+)', 'downsample {}'),
             (r'stages\.(\d+)', 'stage {} blocks'), (r'norm(\d+)', 'output norms')],
    'timm': [(r'stem_\d+', 'stem'), (r'stages_(\d+)\.downsample', 'downsample {}'),
             (r'stages_(\d+)\.blocks', 'stage {} blocks')],
    'mmpretrain': [(r'downsample_layers\.0', 'stem'),
                   (r'downsample_layers\.(\d+)', 'downsample {}'),
                   (r'stages\.(\d+)', 'stage {} blocks'), (r'norm(\d+)', 'output norms')],
}


def part_modules(model: nn.Module, impl: str) -> Dict[str, List[nn.Module]]:
    """{part label: the modules whose forward calls make up that part} for ``impl``."""
    parts = defaultdict(list)
    for name, module in model.named_modules():
        for pattern, label in PARTS[impl.split('_')[0]]:
            match = re.fullmatch(pattern, name)
            if match:
                parts[label.format(*match.groups())].append(module)
                break
    if not parts:
        raise ValueError(f'--per-stage: no module of {impl} matches its part names')
    return dict(parts)


def time_parts(case: Case, model: nn.Module) -> None:
    """Hooks on ``model`` and a wrapped ``case.step``: after every step, ``case.parts[label]``
    gains the seconds that step spent in each part."""
    spent = defaultdict(float)

    def hooks(label):
        def pre(module, args):
            module._part_start = time.perf_counter()

        def post(module, args, output):
            spent[label] += time.perf_counter() - module._part_start
        return pre, post

    for label, modules in part_modules(model, case.name).items():
        for module in modules:
            pre, post = hooks(label)
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)
    step = case.step

    def timed_step():
        spent.clear()
        out = step()
        for label, seconds in spent.items():
            case.parts.setdefault(label, []).append(seconds)
        return out
    case.step = timed_step


def parts_table(cases: List[Case]) -> str:
    """Markdown: one row per part, for every inference case its median ms and, for peers, the
    paired ratio to ours with its 95% interval (timed steps only: the warm-up's are dropped)."""
    cases = [c for c in cases if c.mode == 'infer' and c.parts]
    for c in cases:
        c.parts = {k: v[-len(c.times):] for k, v in c.parts.items()}
    ours = next(c for c in cases if c.name == 'ours')
    labels = list(ours.parts) + [k for c in cases for k in c.parts if k not in ours.parts]
    header = ['part'] + [f'{c.name} ms' if c is ours else f'{c.name} ms, paired peer/ours'
                         for c in cases]
    lines = ['| ' + ' | '.join(header) + ' |', '|---' * len(header) + '|']
    for label in dict.fromkeys(labels):
        cells = [label]
        for c in cases:
            times = c.parts.get(label)
            if not times:
                cells.append('-')
            elif c is ours or label not in ours.parts:
                cells.append(f'{statistics.median(times) * 1e3:.1f}')
            else:
                cells.append(f'{statistics.median(times) * 1e3:.1f}, '
                             f'{format_ratio(times, ours.parts[label])}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
