"""router.response_cache: a share of requests answered from a cache (LiteLLM's ``cache:
true``), at no provider cost and the cache's latency, the same requests for every policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import read, run_scenario_data, scenario

HIT_SHARE, CACHE_LATENCY_S = 0.3, 0.004


def run(tmp_path, name, cache):
    router = {"timeout_s": 60, "max_attempts": 3}
    if cache:
        router["response_cache"] = {"hit_share": HIT_SHARE, "latency_s": CACHE_LATENCY_S}
    folder = tmp_path / name
    folder.mkdir()
    return run_scenario_data(folder, scenario(replications=1, router=router), report=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cache")
    return {name: (read(out), read(out, "attempts")) for name, out in
            (("plain", run(tmp, "plain", False)), ("cached", run(tmp, "cached", True)))}


def hits_of(requests):
    """Requests answered in exactly the cache's latency at no cost."""
    return set(requests[np.isclose(requests.latency_s, CACHE_LATENCY_S) & (requests.cost_usd == 0)].request_id)


def test_a_share_of_requests_is_answered_from_the_cache_at_no_cost(runs):
    plain, _ = runs["plain"]
    cached, attempts = runs["cached"]
    for policy in ("static-big", "static-small"):
        without = plain[plain.policy == policy].set_index("request_id")
        with_cache = cached[cached.policy == policy].set_index("request_id")
        hits = hits_of(with_cache.reset_index())
        n = len(with_cache)
        assert abs(len(hits) / n - HIT_SHARE) <= 4 * math.sqrt(HIT_SHARE * (1 - HIT_SHARE) / n)
        misses = with_cache.index.difference(list(hits))
        # A miss costs and takes what it did without a cache (the same draws); a hit, nothing and the look-up.
        assert np.allclose(with_cache.loc[misses, "cost_usd"], without.loc[misses, "cost_usd"])
        assert np.allclose(with_cache.loc[misses, "latency_s"], without.loc[misses, "latency_s"])
        assert (with_cache.loc[list(hits), "status"] == "ok").all()
        saved = without.loc[list(hits), "cost_usd"].sum()
        assert math.isclose(with_cache.cost_usd.sum(), without.cost_usd.sum() - saved, rel_tol=1e-9)
        # A hit is one attempt on the policy's pick, which never reached the provider.
        on = attempts[(attempts.policy == policy) & attempts.request_id.isin(hits)]
        assert len(on) == len(hits) and (on.cost_usd == 0).all() and (on.model == policy.split("-")[1]).all()


def test_the_same_requests_hit_for_every_policy(runs):
    cached, _ = runs["cached"]
    big, small = (hits_of(cached[cached.policy == p]) for p in ("static-big", "static-small"))
    assert big == small and big
