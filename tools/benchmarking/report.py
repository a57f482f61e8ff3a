"""The benchmark's Markdown table: median, spread, ratio to ours, fraction of the GEMM floor."""
import statistics
from typing import List

from .measure import Case


def summarize(cases: List[Case], gflops: float) -> str:
    """One row per case. ``peer/ours`` > 1 means ours is faster (ratio of medians, same mode);
    ``of GEMM floor``: FLOPs / (GEMM rate x median time), the share of the arithmetic floor the
    implementation reaches; spread = inter-quartile range / median."""
    ours = {c.mode: statistics.median(c.times) for c in cases if c.name == 'ours'}
    lines = ['| impl | input | mode | median s | spread (IQR/med) | peer/ours | of GEMM floor | '
             'peak MB | page faults/step | check |', '|---|---|---|---|---|---|---|---|---|---|']
    for c in cases:
        med = statistics.median(c.times)
        q = statistics.quantiles(c.times, n=4) if len(c.times) > 1 else [med, med, med]
        ratio = f'{med / ours[c.mode]:.2f}x' if c.mode in ours else '-'
        floor = f'{c.flops / (gflops * 1e9) / med:.0%}' if c.flops else '-'
        peak = f'{c.peak_mb:.0f}' if c.peak_mb is not None else '-'
        lines.append(f'| {c.name} | {c.fmt} | {c.mode} | {med:.3f} | {(q[2] - q[0]) / med:.0%} | '
                     f'{ratio} | {floor} | {peak} | {statistics.median(c.faults):,.0f} | '
                     f'{c.note} |')
    return '\n'.join(lines)
