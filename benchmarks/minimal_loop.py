"""The yardstick of the speed targets: the least a simpy simulator of a request
trace must do. Each request is an arrival event and a service timeout, and five
fields of it (arrival, start, end, model, status) go into preallocated numpy
arrays; there is no routing at all. routesim's speed is reported as a multiple
of this loop's time on the same requests, measured in the same run.
"""

from __future__ import annotations

import time

import numpy as np
import simpy
from simpy.events import Timeout


def _dispatch(event: Timeout) -> None:
    callback, token = event._value
    callback(token)


def minimal_loop(arrival_s: np.ndarray, service_s: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds to simulate the requests, and the recorded end times (for checking)."""
    n = len(arrival_s)
    arrivals, services = arrival_s.tolist(), service_s.tolist()
    start = np.empty(n)
    end = np.empty(n)
    arrived = np.empty(n)
    model = np.empty(n, dtype=np.int32)
    status = np.empty(n, dtype=np.int8)
    env = simpy.Environment()

    def schedule(delay: float, callback, token) -> None:
        Timeout(env, delay, (callback, token)).callbacks.append(_dispatch)

    def done(i: int) -> None:
        end[i] = env.now
        status[i] = 0

    def arrive(i: int) -> None:
        if i + 1 < n:  # one pending arrival at a time
            schedule(arrivals[i + 1] - arrivals[i], arrive, i + 1)
        now = env.now
        arrived[i] = now
        start[i] = now
        model[i] = 0
        schedule(services[i], done, i)

    began = time.perf_counter()
    if n:
        schedule(arrivals[0], arrive, 0)
        env.run()
    return time.perf_counter() - began, end
