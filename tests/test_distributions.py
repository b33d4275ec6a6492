"""The distributions a scenario names agree with scipy's and with the percentiles they were given."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.distributions import Lognormal
from sim.rng import Stream, generator


@pytest.mark.parametrize("median, value, percentile", [(0.8, 2.4, 95), (80.0, 30.0, 5), (82 * 60, 305 * 60, 90)])
def test_a_lognormal_reproduces_the_percentiles_it_was_given(median, value, percentile):
    dist = Lognormal.from_percentile(median, value, percentile)
    reference = stats.lognorm(s=dist.sigma, scale=median)
    assert dist.quantile(percentile / 100) == pytest.approx(value, rel=1e-12)
    assert reference.ppf(percentile / 100) == pytest.approx(value, rel=1e-9)
    assert dist.quantile(0.5) == pytest.approx(median, rel=1e-12)
    assert dist.mean == pytest.approx(reference.mean(), rel=1e-12)


def test_samples_follow_the_distribution():
    dist = Lognormal.from_percentile(200.0, 1000.0, 95)
    draws = dist.sample(generator(1, 0, Stream.TRACE), 200_000)
    assert stats.kstest(draws, stats.lognorm(s=dist.sigma, scale=200.0).cdf).pvalue > 1e-3
    assert np.median(draws) == pytest.approx(200.0, rel=0.02)
