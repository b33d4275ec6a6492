"""A routesim run written out as a LiteLLM proxy would have logged it in LiteLLM_SpendLogs:
one row per attempt, in LiteLLM's formats (naive UTC timestamps, "success"/"failure",
the error in metadata.error_information, the client request's call id and the model group
it asked for in metadata), so that the backtest's round trip starts from rows a proxy writes."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

STATUS_CODES = {"error": "500", "rate_limited": "429", "timeout": "408", "context_overflow": "400"}
ERROR_CLASSES = {"500": "InternalServerError", "429": "RateLimitError", "408": "Timeout", "400": "ContextWindowExceededError"}


def spend_log_rows(run_folder, policy: str, start: datetime, groups: dict[str, str],
                   providers: dict[str, str], cache_share: dict[str, float] | None = None,
                   replication: int = 0) -> pd.DataFrame:
    """The run's attempts for ``policy`` as LiteLLM_SpendLogs rows; ``groups``: deployment ->
    the model group it serves; ``start``: the instant the run's second 0 stands for (naive UTC);
    ``cache_share``: the scenario's workloads' cache_hit_share (the prompt tokens read from the
    provider's cache, as routesim bills them: input × share, rounded)."""
    where = [("policy", "=", policy), ("replication", "=", replication)]
    requests = pq.read_table(run_folder / "requests.parquet", filters=where).to_pandas().set_index("request_id")
    attempts = pq.read_table(run_folder / "attempts.parquet", filters=where).to_pandas()
    request = requests.loc[attempts.request_id]
    origin = pd.Timestamp(start)
    ok = (attempts.outcome == "ok").to_numpy()
    last = attempts.groupby("request_id").attempt.transform("max").to_numpy() == attempts.attempt.to_numpy()
    first_token = origin + pd.to_timedelta(request.arrival_s.to_numpy() + request.ttft_s.to_numpy(), unit="s")
    code = attempts.outcome.map(STATUS_CODES).fillna("").to_numpy()
    asked = request.workload.to_numpy()  # the workload names the model group the client asked for
    share = np.array([(cache_share or {}).get(w, 0.0) for w in asked])
    cached = np.rint(request.input_tokens.to_numpy() * share).astype(int)
    metadata = [json.dumps({"litellm_call_id": rid, "original_model_group": group, "attempted_fallbacks": int(n),
                            "usage_object": {"prompt_tokens_details": {"cached_tokens": int(k)}},
                            **({} if c == "" else {"error_information": {"error_code": c, "error_class": ERROR_CLASSES[c]}})})
                for rid, group, n, c, k in zip(attempts.request_id, asked, attempts.attempt, code, cached)]
    starts = origin + pd.to_timedelta(attempts.start_s.to_numpy(), unit="s")
    ends = origin + pd.to_timedelta(attempts.end_s.to_numpy(), unit="s")
    rows = pd.DataFrame({
        "request_id": [f"chatcmpl-{rid}-{n}" for rid, n in zip(attempts.request_id, attempts.attempt)],
        "call_type": "acompletion", "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "spend": np.where(ok, attempts.cost_usd.to_numpy(), 0.0),
        "prompt_tokens": request.input_tokens.to_numpy(),
        "completion_tokens": np.where(ok, request.output_tokens.to_numpy(), 0),
        "startTime": starts, "endTime": ends,
        "completionStartTime": pd.Series(first_token).where(ok & last).to_numpy(),
        "request_duration_ms": ((ends - starts).total_seconds() * 1000).astype(int),
        "model": attempts.model.to_numpy(), "model_id": attempts.model.to_numpy(),
        "model_group": attempts.model.map(groups).to_numpy(),
        "custom_llm_provider": attempts.model.map(providers).to_numpy(), "api_base": "", "user": "",
        "metadata": metadata, "cache_hit": "False", "cache_key": "", "request_tags": "[]", "team_id": "team-a",
        "end_user": "", "status": np.where(ok, "success", "failure")})
    rows["total_tokens"] = rows.prompt_tokens + rows.completion_tokens
    rows = rows.sort_values(["startTime", "request_id"], kind="stable").reset_index(drop=True)
    for column in ("startTime", "endTime", "completionStartTime"):  # the proxy's TIMESTAMP(3): milliseconds
        rows[column] = pd.to_datetime(rows[column]).dt.round("ms")
    return rows
