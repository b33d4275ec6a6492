"""router.retry.reroute: the router asks the policy again before each retry, telling it
what was tried, and honours the backoff (Decision.wait_s) it asks for (issue 13)."""

from __future__ import annotations

import numpy as np

from conftest import install_plugin, read, run_scenario_data, scenario

POLICY = '''
from sim.policies import Decision


class Stubborn:
    """Tries 'big' again and again, waiting 2 s more each time; records what it was told."""
    seen = []

    def route(self, request, view):
        Stubborn.seen.append((request.request_id, request.tried))
        return Decision(("big",), "again", wait_s=2.0 * len(request.tried))
'''


def test_the_policy_is_asked_again_with_what_was_tried_and_its_wait_is_honoured(tmp_path, monkeypatch):
    stubborn = install_plugin(tmp_path, monkeypatch, "stubborn", POLICY)
    data = scenario(replications=1, trace={"synthetic": {"duration_s": 20, "rate_per_s": 0.5}},
                    events=[{"kind": "outage", "model": "big", "start_s": 0, "end_s": 1000}],
                    router={"timeout_s": 60, "max_attempts": 4, "deadline_s": 9.0,
                            "retry": {"reroute": True}},
                    policies={"s": {"kind": "stubborn:Stubborn"}}, baseline="s")
    out = run_scenario_data(tmp_path, data, report=False)
    attempts = read(out, "attempts").sort_values(["request_id", "attempt"])
    first = attempts[attempts.request_id == attempts.request_id.iloc[0]]
    # Attempts on 'big' (the same model, allowed again) after waits of 2 and 4 s from each failure's
    # end (an outage fails after fail_fast_s 0.1 s); the next wait, 6 s, would pass the 9 s deadline.
    starts = first.start_s.to_numpy() - first.start_s.iloc[0]
    assert list(first.model) == ["big"] * 3
    assert np.allclose(starts, [0.0, 0.1 + 2.0, 0.1 + 2.0 + 0.1 + 4.0], atol=1e-6)
    requests = read(out).set_index("request_id")
    rid = first.request_id.iloc[0]
    assert requests.loc[rid, "status"] == "failed"
    assert abs(requests.loc[rid, "latency_s"] - 9.0) < 1e-6  # it ended at its deadline, not after the wait
    told = [tried for request_id, tried in stubborn.Stubborn.seen if request_id == rid]
    assert told == [(), ("big",), ("big", "big"), ("big", "big", "big")]
