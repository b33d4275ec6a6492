"""The backtest's verdict on one figure, from replications given here: within its target, a
MISS, or too noisy to judge (off target, but the replications spread wider than the target
and around the logged value)."""

from __future__ import annotations

import pytest
from scipy import stats


def _interval(values):
    n = len(values)
    mean = sum(values) / n
    half = stats.t.ppf(0.975, n - 1) * stats.tstd(values) / n ** 0.5
    return mean, mean - half, mean + half


@pytest.mark.parametrize("unit, logged, values, verdict", [
    ("seconds", 1.0, [1.02, 0.98, 1.01, 0.99, 1.0], "ok"),  # error 0%
    ("seconds", 1.0, [1.3, 1.31, 1.29, 1.3, 1.3], "miss"),  # +30%, tight
    ("seconds", 1.2, [0.6, 1.6, 0.9, 1.5, 0.7], "noisy"),  # −11.7%, the interval holds 1.2 and is ±0.58
    ("usd", 100.0, [98.0, 98.1, 97.9, 98.0, 98.0], "miss"),  # −2%, target 1%
    ("share", 0.99, [0.985, 0.988, 0.987, 0.986, 0.984], "ok"),  # −0.4 points, target 0.5
    ("share", 0.99, [0.979, 0.981, 0.98, 0.98, 0.98], "miss"),  # −1 point
])
def test_verdicts(unit, logged, values, verdict):
    from sim.verdicts.backtest import _row

    row = _row("figure", unit, logged, values)
    mean, lo, hi = _interval(values)
    assert row.simulated == pytest.approx(mean) and row.ci95 == pytest.approx((lo, hi))
    error = mean - logged if unit == "share" else mean / logged - 1
    assert row.error == pytest.approx(error)
    assert row.verdict == verdict and row.within == (verdict == "ok")


def test_one_replication_has_no_interval_and_is_never_too_noisy():
    """``backtest -r 1``: a figure without an interval is ok within its target and a miss
    outside it; it cannot be "too noisy to judge" (that needs the replications' spread)."""
    from sim.verdicts.backtest import _row

    near, far = _row("spend", "usd", 10.0, [10.05]), _row("spend", "usd", 10.0, [13.0])
    assert (near.verdict, far.verdict) == ("ok", "miss")
    assert far.error == pytest.approx(0.3) and near.error == pytest.approx(0.005)
    assert all(v != v for v in near.ci95 + far.ci95)  # NaN: no interval from one value
