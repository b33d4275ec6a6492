"""The list prices in force over time, as providers publish them: what billing
charges and what the router is told. A router may know this (prices are
public); it is all of the world that ``Observations`` holds."""

from __future__ import annotations

import bisect

from .points import PricePoint


class PriceBook:
    """Per model, the price points in force from each time on (sorted)."""

    def __init__(self, schedules: list[list[tuple[float, PricePoint]]]):
        self._times: list[list[float]] = [[t for t, _ in schedule] for schedule in schedules]
        self._prices: list[list[PricePoint]] = [[p for _, p in schedule] for schedule in schedules]

    def add(self, m: int, at_s: float, price: PricePoint) -> None:
        """A price change of model ``m`` at ``at_s``; one at the same time replaces the earlier."""
        times = self._times[m]
        i = bisect.bisect_right(times, at_s)
        if i > 0 and times[i - 1] == at_s:
            self._prices[m][i - 1] = price
        else:
            times.insert(i, at_s)
            self._prices[m].insert(i, price)

    def price(self, m: int, t: float) -> PricePoint:
        """The prices of model ``m`` in force at ``t``."""
        prices = self._prices[m]
        if len(prices) == 1:
            return prices[0]
        return prices[bisect.bisect_right(self._times[m], t) - 1]

    def fixed(self, m: int) -> PricePoint | None:
        """Model ``m``'s one price when it never changes, else None."""
        prices = self._prices[m]
        return prices[0] if len(prices) == 1 else None

    def change_times(self) -> list[float]:
        """Every time after the start at which some model's price changes, sorted."""
        return sorted({t for times in self._times for t in times[1:]})
