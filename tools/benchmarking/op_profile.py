"""Where a step's time goes, by kind of operation (``tools/benchmark_backbone.py --profile``).

torch.profiler records every op of a few steps of each implementation; each op's *self* CPU time
(its own kernel, not its children's) is put into one category: GEMMs with oneDNN epilogues,
plain GEMMs (aten/MKL), depthwise convolutions (forward and backward; told apart from the stem
and downsampling convolutions by their (C, 1, k, k) weights), other convolutions, LayerNorm,
GELU, layout copies, and the remaining elementwise ops and reductions. Per-step milliseconds
are reported side by side so that the implementations' costs can be compared category by
category.
"""
from collections import defaultdict
from typing import Dict, List

from torch.profiler import ProfilerActivity, profile

GEMM_EPILOGUE = 'GEMM + fused epilogue (oneDNN)'
GEMM = 'GEMM (aten: MKL)'
DEPTHWISE = 'depthwise conv (fwd + bwd)'
CONV = 'other conv (stem, downsampling)'
CATEGORIES = (GEMM_EPILOGUE, GEMM, DEPTHWISE, CONV, 'LayerNorm', 'GELU', 'layout copies',
              'elementwise, reductions', 'other')
_GEMMS = {'aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm', 'aten::addmm_'}
_COPIES = {'aten::copy_', 'aten::clone', 'aten::contiguous', 'aten::cat', 'aten::to_dense'}


def _depthwise(shapes) -> bool:
    """A (C, 1, k, k) weight (or weight-gradient kernel) among the inputs, not the first."""
    return any(len(s) == 4 and s[1] == 1 and s[0] > 1 for s in shapes[1:] if s)


def category(name: str, shapes) -> str:
    """The category of an op, from its name and its inputs' shapes."""
    if name.startswith('mkldnn::_linear_pointwise'):
        return GEMM_EPILOGUE
    if name in _GEMMS:
        return GEMM
    if 'conv' in name:
        return DEPTHWISE if _depthwise(shapes) else CONV
    if 'layer_norm' in name:
        return 'LayerNorm'
    if 'gelu' in name:
        return 'GELU'
    if name in _COPIES:
        return 'layout copies'
    if name.startswith('aten::'):
        return 'elementwise, reductions'
    return 'other'


def profile_step(step, steps: int = 2) -> Dict[str, float]:
    """Milliseconds per step in each category (self CPU time), after one untimed step."""
    step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    totals = defaultdict(float)
    for evt in prof.key_averages(group_by_input_shape=True):
        totals[category(evt.key, evt.input_shapes or [])] += evt.self_cpu_time_total / 1e3
    return {k: v / steps for k, v in totals.items()}


def profile_table(columns: List[str], results: List[Dict[str, float]]) -> str:
    """Markdown: one row per category, one column per profiled case, ms per step."""
    lines = ['| ms per step | ' + ' | '.join(columns) + ' |',
             '|---|' + '---|' * len(columns)]
    for cat in CATEGORIES:
        if any(r.get(cat, 0.) >= 0.05 for r in results):
            lines.append(f'| {cat} | ' + ' | '.join(f'{r.get(cat, 0.):.0f}' for r in results)
                         + ' |')
    lines.append('| **total** | ' + ' | '.join(f'{sum(r.values()):.0f}' for r in results) + ' |')
    return '\n'.join(lines)
