"""The simpy environment: arrivals and timers. The only module that uses simpy.

Hot path, deliberately lean (the same reasoning as simpy's own inlined core):
callbacks on plain ``Timeout`` events, one pending arrival at a time, no process
per request and no ``any_of`` per attempt. A timer carries ``(callback, token)``
as its value; whoever scheduled it decides from the token whether it is stale.
"""

from __future__ import annotations

from typing import Callable, Sequence

import simpy
from simpy.events import Timeout


def _dispatch(event: Timeout) -> None:
    callback, token = event._value
    callback(token)


class Engine:
    def __init__(self) -> None:
        self.env = simpy.Environment()

    @property
    def now(self) -> float:
        return self.env.now

    def schedule(self, delay: float, callback: Callable[[object], None], token: object) -> None:
        """Call ``callback(token)`` after ``delay`` simulated seconds."""
        Timeout(self.env, delay, (callback, token)).callbacks.append(_dispatch)

    def run(self, arrival_s: Sequence[float], on_arrival: Callable[[int], None]) -> None:
        """Call ``on_arrival(i)`` at each arrival time, then run until nothing is pending."""
        n = len(arrival_s)
        if n == 0:
            return
        env = self.env
        schedule = self.schedule

        def arrive(i: int) -> None:
            # Schedule the next arrival first: only one is pending at any time.
            if i + 1 < n:
                schedule(max(0.0, arrival_s[i + 1] - env.now), arrive, i + 1)
            on_arrival(i)

        schedule(arrival_s[0], arrive, 0)
        env.run()
