"""The benchmark's Markdown table: median, spread, ratios to ours, fraction of the GEMM floor."""
import statistics
from typing import List

from .measure import Case
from .paired import format_ratio


def summarize(cases: List[Case], gflops: float) -> str:
    """One row per case. ``peer/ours`` > 1 means ours is faster: the ratio of medians (same
    mode), and the median of the per-repetition ratios with its 95% confidence interval
    (:mod:`.paired`: the one to read on a noisy machine); ``of GEMM floor``: FLOPs / (GEMM rate
    x median time), the share of the arithmetic floor the implementation reaches; spread =
    inter-quartile range / median."""
    ours = {c.mode: c for c in cases if c.name == 'ours'}
    lines = ['| impl | input | mode | median s | spread (IQR/med) | peer/ours | '
             'paired peer/ours (95% CI) | of GEMM floor | peak MB | page faults/step | check |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for c in cases:
        med = statistics.median(c.times)
        q = statistics.quantiles(c.times, n=4) if len(c.times) > 1 else [med, med, med]
        ref = ours.get(c.mode)
        ratio = f'{med / statistics.median(ref.times):.2f}x' if ref else '-'
        paired = format_ratio(c.times, ref.times) if ref and ref is not c else '-'
        floor = f'{c.flops / (gflops * 1e9) / med:.0%}' if c.flops else '-'
        peak = f'{c.peak_mb:.0f}' if c.peak_mb is not None else '-'
        lines.append(f'| {c.name} | {c.fmt} | {c.mode} | {_seconds(med)} | '
                     f'{(q[2] - q[0]) / med:.0%} | '
                     f'{ratio} | {paired} | {floor} | {peak} | '
                     f'{statistics.median(c.faults):,.0f} | {c.note} |')
    return '\n'.join(lines)


def _seconds(value: float) -> str:
    """Three decimals, or four significant digits below 0.1 s (GPU steps take milliseconds)."""
    return f'{value:.3f}' if value >= 0.1 else f'{value:.4g}'
