"""The scenario's ``backtest:`` block, written by ``routesim import litellm-logs``:
which policy is production's, which model group each deployment serves, and
what the proxy's logs measured over the logged period (the figures
``routesim backtest`` sets the simulation against)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from .common import NonNegative, Probability, Strict


class LoggedLatency(Strict):
    """End-to-end latency of a deployment's answered (streamed) calls, as logged."""

    calls: Annotated[int, Field(ge=1)]
    p50_s: NonNegative
    p95_s: NonNegative
    p99_s: NonNegative


class LoggedFigures(Strict):
    since: Annotated[datetime, Field(strict=False)]  # the first logged call's start
    until: Annotated[datetime, Field(strict=False)]  # the last logged call's start
    rows: Annotated[int, Field(ge=1)]  # calls logged (a request's retries and fallbacks are rows of their own)
    requests: Annotated[int, Field(ge=1)]  # client requests, the rows grouped
    spend_usd: NonNegative
    spend_by_group: dict[str, NonNegative]  # by the model group of the deployment each call went to
    success_rate: Probability  # requests answered (by a deployment or the response cache) / requests
    failover_rate: Probability  # requests that went to more than one call / requests
    latency: dict[str, LoggedLatency] = Field(default_factory=dict)  # per deployment


class BacktestSpec(Strict):
    policy: str  # production's policy: the one whose simulation is set against the logs
    groups: dict[str, str]  # deployment -> the model group it serves
    logged: LoggedFigures
