"""The benchmark's paired ratios and the confidence interval of their median
(tools/benchmarking/paired.py), against hand-computed values and a simulation."""
import math
import random

import pytest

from benchmarking.paired import format_ratio, median_ci_ranks, median_with_ci, paired_ratios


def test_ratios_pair_the_rounds():
    assert paired_ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]


def test_unpaired_times_are_refused():
    with pytest.raises(ValueError, match='same interleaved repetitions'):
        paired_ratios([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize('n,ranks', [(5, None), (6, (1, 6)), (10, (2, 9)), (21, (6, 16))])
def test_ranks_of_the_95_percent_interval(n, ranks):
    """Ranks from the published tables of the sign-test interval for a median (n = 6: the
    extremes cover it with 1 - 2/64 = 97%; n = 5: even the extremes only 1 - 2/32 = 94%)."""
    assert median_ci_ranks(n) == ranks


def test_interval_covers_the_median_as_often_as_it_claims():
    """Simulated: samples of 21 from a skewed distribution (exponential, median ln 2); the
    interval x_(6)..x_(16) covers the true median with probability 1 - 2 P(Bin(21, 1/2) <= 5)
    = 97.3%."""
    rng = random.Random(0)
    trials = 4000
    covered = 0
    for _ in range(trials):
        _, low, high = median_with_ci([rng.expovariate(1.0) for _ in range(21)])
        covered += low <= math.log(2) <= high
    expected = 1 - 2 * sum(math.comb(21, i) for i in range(6)) / 2 ** 21
    assert expected == pytest.approx(0.9734, abs=1e-4)
    assert covered / trials == pytest.approx(expected, abs=0.01)


def test_table_cell():
    ours = [1.0] * 6
    peer = [1.1, 1.2, 1.0, 1.3, 1.16, 1.04]  # sorted ratios 1.00 1.04 1.10 1.16 1.20 1.30
    assert format_ratio(peer, ours) == '1.13x (1.00-1.30)'
    assert format_ratio(peer[:5], ours[:5]) == '1.16x'  # 5 repetitions: too few for an interval
