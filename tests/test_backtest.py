"""The backtest's round trip: a routesim run of a known scenario (two model groups with
fallbacks, an outage, a price change, prompt caching) is written as a LiteLLM proxy logs it into a real
PostgreSQL's LiteLLM_SpendLogs; `routesim import litellm-logs` must recover the scenario's
parameters within stated tolerances, and `routesim backtest` must reproduce the logged totals.

Tolerances, and why (the log is one replication of 2 hours, ~14,000 requests):
- prices (input, cached input, output): to float rounding (LiteLLM bills from a price table), a
  price change to the minute;
- outage window: its start and end to the minute (faults are found per minute);
- error rates: within 0.4 points (binomial noise on ~5,000 calls per deployment);
- latency: the fitted medians (time to first token, tokens per second) within three standard
  errors of a sample median of the scenario's (3-8% with these calls);
- backtest: the issue's aims, spend within 1%, success rate within 0.5 points, latency
  percentiles within 10%.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import datetime

import pandas as pd
import pytest
import yaml

from litellm_logs import spend_log_rows

START = datetime(2026, 11, 2, 9, 0, 0)  # naive UTC, as the proxy stores it
DURATION_S = 7200
OUTAGE = (1800.0, 2400.0)  # big-a down
PRICE_CHANGE_S = 3600.0  # fast-a halves its prices
MODELS = {  # name: provider, group, (input, output) price, ttft median, tokens/s median, error rate
    "fast-a": ("openai", "fast", (0.4, 1.6), 0.4, 90.0, 0.01),
    "fast-b": ("anthropic", "backup", (0.8, 4.0), 0.6, 70.0, 0.005),
    "big-a": ("openai", "big", (2.5, 10.0), 1.2, 50.0, 0.02),
}
CACHED = {"big-a": 1.25}  # cached-input price (the others bill cached tokens at the input price)
CACHE_SHARE = {"big": 0.3}  # of a "big" request's prompt, read from the provider's prompt cache
SOURCE = f"""
name: logged-production
seed: 7
replications: 1
trace:
  synthetic:
    duration_s: {DURATION_S}
    rate_per_s: 2
    workloads: {{fast: 0.6, big: 0.4}}
    input_tokens: {{median: 800, p95: 4000}}
    output_tokens: {{median: 200, p95: 1000}}
workloads:
  fast: {{}}
  big: {{cache_hit_share: {CACHE_SHARE["big"]}}}
models:
""" + "".join(f"""  {name}:
    provider: {provider}
    price: {{input_per_mtok: {price[0]}, output_per_mtok: {price[1]}, cached_input_per_mtok: {CACHED.get(name, price[0])}}}
    latency: {{ttft_s: {{median: {ttft}, p95: {ttft * 2.5}}}, tokens_per_s: {{median: {speed}, p5: {speed / 2.5}}}}}
    quality: {{default: 1.0}}
    error_rate: {error}
""" for name, (provider, _, price, ttft, speed, error) in MODELS.items()) + f"""
events:
  - {{kind: outage, model: big-a, start_s: {OUTAGE[0]}, end_s: {OUTAGE[1]}}}
  - {{kind: price, model: fast-a, at_s: {PRICE_CHANGE_S}, input_per_mtok: 0.2, output_per_mtok: 0.8}}
router: {{max_attempts: 2, health: null, timeout_s: 600}}
policies:
  production: {{kind: manual, routes: {{fast: [fast-a, fast-b], big: [big-a, fast-b]}}}}
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """The source run and its rows as the proxy would have logged them."""
    folder = tmp_path_factory.mktemp("source")
    (folder / "source.yaml").write_text(SOURCE)
    done = subprocess.run([sys.executable, "-m", "sim", "run", str(folder / "source.yaml"), "--out",
                           str(folder / "run"), "--no-report"], capture_output=True, text=True, cwd=folder)
    assert done.returncode == 0, done.stderr
    rows = spend_log_rows(folder / "run", "production", START, {m: v[1] for m, v in MODELS.items()},
                          {m: v[0] for m, v in MODELS.items()}, CACHE_SHARE)
    return folder, rows


def _insert(url, rows):
    from test_spend_logs import _insert as insert

    insert(url, rows)


def _routesim(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], capture_output=True, text=True, cwd=cwd)


#: The proxy's config that routed as the source policy does: fast-a for "fast", big-a for "big", and
#: the "backup" group (fast-b) as both groups' fallback; model_info.id is what the proxy logs as model_id.
CONFIG = """
model_list:
  - model_name: fast
    litellm_params: {model: openai/gpt-4o-mini}
    model_info: {id: fast-a}
  - model_name: backup
    litellm_params: {model: anthropic/claude-3-5-haiku-20241022}
    model_info: {id: fast-b}
  - model_name: big
    litellm_params: {model: openai/gpt-4o}
    model_info: {id: big-a}
  - model_name: embed
    litellm_params: {model: openai/text-embedding-3-small}
    model_info: {mode: embedding}
router_settings:
  num_retries: 0
  fallbacks: [{fast: [backup]}, {big: [backup]}]
"""


@pytest.fixture(scope="module")
def imported(logged, postgres_url):
    pytest.importorskip("litellm", reason="the table's schema comes from the litellm package (conformance extra)")
    folder, rows = logged
    _insert(postgres_url, rows)
    (folder / "proxy_config.yaml").write_text(CONFIG)
    done = _routesim("import", "litellm-logs", postgres_url, "-o", folder / "backtest.yaml", "--trace",
                     folder / "logged.parquet", "--config", folder / "proxy_config.yaml", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "routesim@" not in done.stdout + (folder / "backtest.yaml").read_text()
    return folder, rows, yaml.safe_load((folder / "backtest.yaml").read_text())


def test_the_import_recovers_the_logged_world(imported):
    folder, rows, scenario = imported
    models = scenario["models"]
    assert set(models) == set(MODELS)
    source = pd.read_parquet(folder / "run" / "requests.parquet")
    for name, (provider, group, price, ttft, speed, error) in MODELS.items():
        spec = models[name]
        assert spec["provider"] == provider and scenario["backtest"]["groups"][name] == group
        assert spec["price"]["input_per_mtok"] == pytest.approx(price[0], rel=1e-6)
        assert spec["price"]["output_per_mtok"] == pytest.approx(price[1], rel=1e-6)
        if name != "fast-a":  # fast-a serves only "fast", whose requests read nothing from the cache
            assert spec["price"]["cached_input_per_mtok"] == pytest.approx(CACHED.get(name, price[0]), rel=1e-6)
        else:
            assert "cached_input_per_mtok" not in spec["price"]
        assert spec["error_rate"] == pytest.approx(error, abs=0.004)
        # Latency: the fitted median against the logged calls' own (pandas), and against the scenario's
        # median within three standard errors of a sample median (1.2533 σ / √n, σ of the lognormal).
        mine = rows[(rows.model_id == name) & (rows.status == "success")]
        logged_ttft = (pd.to_datetime(mine.completionStartTime) - pd.to_datetime(mine.startTime)).dt.total_seconds()
        sigma = math.log(2.5) / 1.6449
        tolerance = 3 * 1.2533 * sigma / math.sqrt(len(mine))
        quantiles = dict(map(tuple, spec["latency"]["ttft_s"]["quantiles"]))
        assert quantiles[0.5] == pytest.approx(logged_ttft.median(), rel=2e-3)
        assert quantiles[0.5] == pytest.approx(ttft, rel=tolerance)
        speeds = dict(map(tuple, spec["latency"]["tokens_per_s"]["quantiles"]))
        assert speeds[0.5] == pytest.approx(speed, rel=tolerance)
    events = scenario["events"]
    outages = [e for e in events if e["kind"] == "outage"]
    assert [e["model"] for e in outages] == ["big-a"]
    assert outages[0]["start_s"] == pytest.approx(OUTAGE[0], abs=60)
    assert outages[0]["end_s"] == pytest.approx(OUTAGE[1], abs=60)
    assert not [e for e in events if e["kind"] == "partial_outage"]  # 1-2% errors are no fault window
    (change,) = [e for e in events if e["kind"] == "price"]
    assert change["model"] == "fast-a" and change["at_s"] == pytest.approx(PRICE_CHANGE_S, abs=60)
    assert (change["input_per_mtok"], change["output_per_mtok"]) == pytest.approx((0.2, 0.8), rel=1e-6)
    # The logged figures, against the source run's own tables (pandas, not the importer's sums).
    logged = scenario["backtest"]["logged"]
    production = source[source.policy == "production"]
    assert logged["requests"] == len(production) and logged["rows"] == len(rows)
    assert logged["spend_usd"] == pytest.approx(production.cost_usd.sum(), rel=1e-9)
    assert logged["success_rate"] == pytest.approx((production.status == "ok").mean(), abs=1e-6)
    assert logged["failover_rate"] == pytest.approx((production.attempts > 1).mean(), abs=1e-6)
    # The replayed routes are the logged ones; fallbacks as the logs show them.
    trace = pd.read_parquet(folder / "logged.parquet")
    assert len(trace) == len(production) and (trace.logged_attempts == production.attempts.to_numpy()).all()
    assert scenario["policies"]["logged-routing"]["fallbacks"] == {"big-a": ["fast-b"], "fast-a": ["fast-b"]}
    # The proxy's config as a policy over the logged deployments: production's, so the one backtested.
    assert scenario["backtest"]["policy"] == scenario["baseline"] == "litellm-config"
    config_policy = scenario["policies"]["litellm-config"]
    assert config_policy["kind"] == "litellm-router"
    assert config_policy["groups"] == {"fast": ["fast-a"], "backup": ["fast-b"], "big": ["big-a"]}
    assert config_policy["fallbacks"] == {"fast": ["backup"], "big": ["backup"]}
    # Every inferred model says where it came from.
    text = (folder / "backtest.yaml").read_text()
    for name in MODELS:
        assert f"# {name} (model group {MODELS[name][1]}): " in text
    failed_in_outage = rows[(rows.model_id == "big-a") & (rows.startTime >= pd.Timestamp(START) + pd.Timedelta(
        seconds=OUTAGE[0])) & (rows.startTime < pd.Timestamp(START) + pd.Timedelta(seconds=OUTAGE[1]))]
    assert (failed_in_outage.status == "failure").all()
    assert (f"# big-a: {len(failed_in_outage)} of {len(failed_in_outage)} calls failed from 2026-11-02 09:30:00 UTC "
            "to 2026-11-02 09:40:00 UTC") in text
    # Each event's comment sits just above it.
    lines = text.splitlines()
    for said, event in (("# big-a: ", "- {kind: outage, model: big-a,"), ("# fast-a's prices from", "- {kind: price, model: fast-a,")):
        at = next(k for k, line in enumerate(lines) if line.strip().startswith(said))
        following = next(line for line in lines[at:] if not line.strip().startswith("#"))
        assert following.strip().startswith(event), (said, following)


def test_the_backtest_reproduces_the_logged_totals(imported):
    folder, _, scenario = imported
    done = _routesim("backtest", folder / "backtest.yaml", "--out", folder / "bt", cwd=folder)
    assert done.returncode == 0, done.stderr
    record = json.loads((folder / "bt" / "backtest.json").read_text())
    rows = {r["figure"]: r for r in record["rows"]}
    logged = scenario["backtest"]["logged"]
    assert rows["total spend"]["logged"] == logged["spend_usd"]
    assert abs(rows["total spend"]["simulated"] / logged["spend_usd"] - 1) <= 0.01
    assert abs(rows["success rate"]["simulated"] - logged["success_rate"]) <= 0.005
    for deployment, figures in logged["latency"].items():
        for q in (50, 95, 99):
            simulated = rows[f"p{q} latency, {deployment}"]["simulated"]
            assert abs(simulated / figures[f"p{q}_s"] - 1) <= 0.10, (deployment, q)
    summary = {r["figure"]: (r["simulated"], r["logged"], r["error"]) for r in record["rows"]}
    print(json.dumps(summary, indent=1))  # the measured errors, for the issue note (pytest -s)
    assert "Backtest" in done.stdout and record["policy"] == "litellm-config"
    report = (folder / "bt" / "report.md").read_text()
    assert report.index("## Backtest") < report.index("## Decision")
    html = (folder / "bt" / "report.html").read_text()
    assert html.index('id="backtest"') < html.index('id="decision"')
    table = re.search(r'<table id="backtest-figures" data-matched="(\w+)">(.*?)</table>', html, re.S)
    assert table.group(1) == "true"
    assert re.findall(r'<tr><td class="name">(.*?)</td>', table.group(2)) == [r["figure"] for r in record["rows"]]


def test_an_export_of_the_table_imports_as_the_database_does(imported):
    """The same rows as CSV and as Parquet: the same scenario (but for where it says it came
    from) and the same trace."""
    folder, rows, scenario = imported
    rows.to_csv(folder / "spend_logs.csv", index=False)
    rows.to_parquet(folder / "spend_logs.parquet", index=False)
    for export in ("spend_logs.csv", "spend_logs.parquet"):
        done = _routesim("import", "litellm-logs", export, "-o", f"{export}.yaml", "--trace", f"{export}.trace.parquet",
                         "--config", "proxy_config.yaml", cwd=folder)
        assert done.returncode == 0, done.stderr
        again = yaml.safe_load((folder / f"{export}.yaml").read_text())
        for key in ("models", "events", "router", "policies", "backtest"):
            assert again[key] == scenario[key], (export, key)
        pd.testing.assert_frame_equal(pd.read_parquet(folder / f"{export}.trace.parquet"),
                                      pd.read_parquet(folder / "logged.parquet"))


def test_a_bad_row_stops_the_import_naming_it_and_writes_nothing(logged, tmp_path):
    _, rows = logged
    bad = rows.astype({"completion_tokens": object})
    bad.loc[100, "completion_tokens"] = "lots"
    bad.to_csv(tmp_path / "spend_logs.csv", index=False)
    done = _routesim("import", "litellm-logs", "spend_logs.csv", "-o", "backtest.yaml", "--trace", "logged.parquet",
                     cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: spend_logs.csv: request_id {rows.request_id[100]}: completion_tokens: "
                                   "not a number >= 0 ('lots')")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spend_logs.csv"]


def test_a_candidate_is_compared_on_the_calibrated_world(imported):
    """routesim backtest --policy adds a candidate without touching the scenario; a problem in the
    candidate's file names that file and line."""
    folder, rows, _ = imported
    (folder / "candidate.yaml").write_text("cheap-first: {kind: static, model: fast-a, fallbacks: [fast-b]}\n"
                                           "peek: {kind: 'peeking:Peek'}\n")
    # A policy that declares no `reads` is never given production's logged route.
    (folder / "peeking.py").write_text(
        "from sim.policies import Decision\n"
        "class Peek:\n"
        "    def route(self, request, view):\n"
        "        return Decision(('fast-a',), f'saw {len(request.logged_route)} logged calls')\n")
    before = (folder / "backtest.yaml").read_text()
    done = _routesim("backtest", "backtest.yaml", "--policy", "candidate.yaml", "--out", "with-candidate",
                     "-r", "2", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert (folder / "backtest.yaml").read_text() == before
    summary = json.loads((folder / "with-candidate" / "summary.json").read_text())
    assert list(summary["policies"]) == ["logged-routing", "litellm-config", "cheap-first", "peek"]
    decisions = pd.read_parquet(folder / "with-candidate" / "decisions.parquet", columns=["policy", "reason"])
    assert set(decisions.reason[decisions.policy == "peek"]) == {"saw 0 logged calls"}
    assert set(decisions.reason[decisions.policy == "logged-routing"]) == {"replay: as logged"}
    # Without --config the replay of the logged routes is production's policy, and it too matches the logs.
    rows.to_parquet(folder / "replayed-logs.parquet", index=False)
    done = _routesim("import", "litellm-logs", "replayed-logs.parquet", "-o", "replayed.yaml", "--trace", "replayed.parquet",
                     cwd=folder)
    assert done.returncode == 0, done.stderr
    replayed = yaml.safe_load((folder / "replayed.yaml").read_text())
    assert replayed["backtest"]["policy"] == replayed["baseline"] == "logged-routing"
    assert set(replayed["policies"]) == {"logged-routing"}
    done = _routesim("backtest", "replayed.yaml", "--out", "replayed", "-r", "3", "--require-match", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((folder / "replayed" / "backtest.json").read_text())
    assert record["policy"] == "logged-routing" and record["matched"]
    for row in record["rows"]:  # a figure off its target passes only as too noisy to judge, by its own interval
        lo, hi = row["ci95"]
        assert row["within"] or (row["verdict"] == "noisy" and lo <= row["logged"] <= hi), row
    requests = pd.read_parquet(folder / "with-candidate" / "requests.parquet")
    cheap = requests[requests.policy == "cheap-first"]
    assert set(cheap.model[cheap.status == "ok"]) <= {"fast-a", "fast-b"}
    # Independently of the summary: the candidate's bill from its requests, against the replay's.
    bill = requests.groupby("policy").cost_usd.sum()
    assert bill["cheap-first"] < bill["logged-routing"] / 2  # big's traffic on a model ~6 times cheaper
    assert summary["policies"]["cheap-first"]["cost_usd"]["mean"] == pytest.approx(bill["cheap-first"] / 2)
    (folder / "broken.yaml").write_text("cheap-first-2:\n  kind: static\n  model: no-such-model\n")
    done = _routesim("backtest", "backtest.yaml", "--policy", "broken.yaml", "--out", "broken", cwd=folder)
    assert done.returncode == 2 and "broken.yaml:3: policies.cheap-first-2.model: unknown model 'no-such-model'" in done.stderr


def test_files_the_import_did_not_write_are_never_replaced(logged, tmp_path):
    """-o or --trace naming a file of the user's (here their own trace and notes) is refused, and the
    file is left as it was; what an earlier import wrote is replaced."""
    _, rows = logged
    rows.iloc[:2000].to_csv(tmp_path / "spend_logs.csv", index=False)
    (tmp_path / "notes.yaml").write_text("my notes\n")
    rows.iloc[:10].to_parquet(tmp_path / "mine.parquet")
    for out, trace in (("notes.yaml", "new.parquet"), ("new.yaml", "mine.parquet")):
        done = _routesim("import", "litellm-logs", "spend_logs.csv", "-o", out, "--trace", trace, cwd=tmp_path)
        assert done.returncode == 2 and "was not written by routesim import litellm-logs: not replaced" in done.stderr
    assert (tmp_path / "notes.yaml").read_text() == "my notes\n"
    assert len(pd.read_parquet(tmp_path / "mine.parquet")) == 10
    assert not (tmp_path / "new.yaml").exists() and not (tmp_path / "new.parquet").exists()
    for _ in range(2):  # the second time replaces the first's files
        done = _routesim("import", "litellm-logs", "spend_logs.csv", "-o", "new.yaml", "--trace", "new.parquet",
                         cwd=tmp_path)
        assert done.returncode == 0, done.stderr
