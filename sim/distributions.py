"""Every distribution a scenario can name, with its maths in one place: parameters
from the percentiles a user writes, sampling from standard draws, quantiles and
the analytic mean.

A scenario gives a lognormal as its median and one other percentile: the p95 of
a latency or a token count, the p5 (slow tail) of a rate, the p90 of an incident
duration. With ``z_p`` the standard normal quantile, ``mu = ln(median)`` and
``sigma = ln(value / median) / z_p``. A latency can also be an empirical
quantile table (``QuantileTable``), fitted from measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: Standard normal quantiles of the percentiles scenarios use (exact doubles, so
#: parameters, and so every draw, stay byte-identical across versions).
Z = {90: 1.2815515655446004, 95: 1.6448536269514722}


@dataclass(frozen=True)
class Lognormal:
    """``median * exp(sigma * Z)`` for a standard normal ``Z``: ``mu = ln(median)``."""

    median: float
    sigma: float

    @classmethod
    def from_percentile(cls, median: float, value: float, percentile: int) -> "Lognormal":
        """The lognormal with this median whose ``percentile``-th percentile is ``value``
        (a percentile below 50, such as a rate's p5, is its lower tail)."""
        if percentile > 50:
            return cls(median, math.log(value / median) / Z[percentile])
        return cls(median, math.log(median / value) / Z[100 - percentile])

    @property
    def mu(self) -> float:
        return math.log(self.median)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma * self.sigma / 2)

    def quantile(self, q: float) -> float:
        return self.median * math.exp(self.sigma * NormalDist().inv_cdf(q))

    def from_normal(self, z):
        """Values for standard normal draws ``z`` (a number or an array): sampling with
        pre-drawn variates keeps common random numbers across policies."""
        return np.exp(self.mu + self.sigma * z)

    def sample(self, rng: np.random.Generator, size: int | None = None):
        return self.from_normal(rng.standard_normal(size))


@dataclass(frozen=True)
class QuantileTable:
    """An empirical distribution given by its quantile function at a few points
    (probabilities from 0 to 1, values non-decreasing), linear in between: what
    ``routesim catalog fit-latency`` writes from measurements. A draw maps the
    standard normal ``z`` to ``u = Phi(z)`` and reads the table at ``u``, so it
    uses the same pre-drawn variates as a lognormal."""

    probabilities: tuple[float, ...]
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def mean(self) -> float:
        """The mean of the piecewise-linear quantile function: the integral over u."""
        p, v = np.asarray(self.probabilities), np.asarray(self.values)
        return float(np.sum(np.diff(p) * (v[1:] + v[:-1]) / 2))

    def quantile(self, q: float) -> float:
        return float(np.interp(q, self.probabilities, self.values))

    def from_normal(self, z):
        from scipy.special import ndtr  # the standard normal CDF, vectorised

        return np.interp(ndtr(z), self.probabilities, self.values)

    def sample(self, rng: np.random.Generator, size: int | None = None):
        return self.from_normal(rng.standard_normal(size))
