"""Paired speed ratios with a confidence interval: comparisons that survive a noisy machine.

On a shared virtual machine the speed of the whole machine drifts by up to 2x within minutes
(docs/benchmarks.md: a 2048² GEMM measured 42-156 GFLOP/s in one quarter of an hour), so a
ratio of two medians taken over the same minutes still moves by about 0.1 between runs. Every
repetition of :func:`~.measure.run_interleaved` runs each case once, back to back, so the two
steps of a repetition saw nearly the same machine: the per-repetition ratio ``peer / ours``
cancels the drift that both shared. Its median comes with a distribution-free confidence
interval (order statistics of the sorted ratios, from the binomial distribution: no assumption
about the shape of the noise), which says whether a goal such as "1.1x" is met, missed, or
undecided by the run.
"""
import math
import statistics
from typing import List, Optional, Sequence, Tuple


def paired_ratios(peer: Sequence[float], ours: Sequence[float]) -> List[float]:
    """``peer[i] / ours[i]`` for each repetition ``i`` (> 1: ours was faster in that one)."""
    if len(peer) != len(ours):
        raise ValueError(f'paired_ratios: {len(peer)} peer times but {len(ours)} of ours; '
                         'both must come from the same interleaved repetitions.')
    return [p / o for p, o in zip(peer, ours)]


def _binomial_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n


def median_ci_ranks(n: int, confidence: float = 0.95) -> Optional[Tuple[int, int]]:
    """1-based ranks ``(lo, hi)`` of the sorted sample that bound its median with at least
    ``confidence`` coverage, the narrowest such symmetric pair; None when ``n`` values are too
    few for that coverage (fewer than 6 for 95%)."""
    alpha = 1 - confidence
    best = None
    for k in range(1, n // 2 + 1):  # interval [x_(k), x_(n+1-k)] misses the median w.p. 2 P(X<k)
        if 2 * _binomial_cdf(k - 1, n) <= alpha:
            best = (k, n + 1 - k)
        else:
            break
    return best


def median_with_ci(values: Sequence[float], confidence: float = 0.95
                   ) -> Tuple[float, Optional[float], Optional[float]]:
    """``(median, low, high)``; ``low``/``high`` are None when there are too few values."""
    ordered = sorted(values)
    ranks = median_ci_ranks(len(ordered), confidence)
    med = statistics.median(ordered)
    if ranks is None:
        return med, None, None
    return med, ordered[ranks[0] - 1], ordered[ranks[1] - 1]


def format_ratio(peer: Sequence[float], ours: Sequence[float]) -> str:
    """The table cell: ``1.16x (1.08-1.22)``, the 95% interval in brackets when there are
    enough repetitions for one."""
    med, low, high = median_with_ci(paired_ratios(peer, ours))
    return f'{med:.2f}x' + (f' ({low:.2f}-{high:.2f})' if low is not None else '')
