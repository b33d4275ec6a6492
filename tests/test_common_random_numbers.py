"""Results stay put when a scenario grows (issue 12): every draw is keyed by stable
identities (model name, request, attempt; a policy's name for its own stream), so
editing a scenario elsewhere leaves a policy's rows byte-identical."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from conftest import BASE, FAST, read, run_scenario_data, scenario

# Every column a policy's rows carry in each table, minus wall-clock decision timings.
TABLES = {"requests": None, "attempts": None, "decisions": ["decision_us", "decision_cpu_us"]}

SHUFFLE = {"kind": "simple-shuffle", "models": ["big", "small"]}


def original() -> dict:
    return scenario(replications=2, policies={"static-big": {"kind": "static", "model": "big"},
                                              "shuffle": copy.deepcopy(SHUFFLE),
                                              "retrying": {"kind": "static", "model": "small"}},
                    baseline="static-big",
                    router={"timeout_s": 60, "max_attempts": 3, "retry": {"per_model": 2}})


def add_unused_model(data):
    data["models"]["spare"] = {"provider": "pc", "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
                               "latency": FAST, "quality": {"default": 2.0}}


def add_model_first(data):
    data["models"] = {"early": {"provider": "pc", "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
                                "latency": FAST, "quality": {"default": 2.0}}, **data["models"]}


def remove_a_policy(data):
    del data["policies"]["retrying"]


def insert_a_policy_first(data):
    data["policies"] = {"first": {"kind": "simple-shuffle", "models": ["big", "small"]}, **data["policies"]}


def more_attempts_for_another_policy(data):
    data["policies"]["retrying"]["router"] = {"max_attempts": 5, "retry": {"per_model": 4}}


EDITS = [add_unused_model, add_model_first, remove_a_policy, insert_a_policy_first,
         more_attempts_for_another_policy]


def rows(out, policy: str) -> dict[str, pd.DataFrame]:
    tables = {}
    for table, drop in TABLES.items():
        frame = read(out, table)
        frame = frame[frame.policy == policy].drop(columns=drop or [])
        tables[table] = frame.reset_index(drop=True)
    return tables


@pytest.fixture(scope="module")
def before(tmp_path_factory):
    folder = tmp_path_factory.mktemp("before")
    return run_scenario_data(folder, original(), report=False)


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("policy", ["static-big", "shuffle"])
def test_a_policy_s_rows_survive_an_edit_elsewhere(tmp_path, before, edit, policy):
    data = original()
    edit(data)
    after = run_scenario_data(tmp_path, data, report=False)
    for table, expected in rows(before, policy).items():
        got = rows(after, policy)[table]
        assert len(expected) > 1000
        pd.testing.assert_frame_equal(got, expected, obj=f"{table} of {policy} after {edit.__name__}")


def test_the_edits_change_what_they_touch(tmp_path):
    """The invariance above is not vacuous: the edited policy's own rows do change."""
    data = original()
    more_attempts_for_another_policy(data)
    data["events"] = [{"kind": "partial_outage", "model": "small", "start_s": 0, "end_s": 600, "error_rate": 0.5}]
    spiked = copy.deepcopy(original())
    spiked["events"] = data["events"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    three = read(run_scenario_data(tmp_path / "a", spiked, report=False))
    five = read(run_scenario_data(tmp_path / "b", data, report=False))
    attempts_three = three[three.policy == "retrying"].attempts
    attempts_five = five[five.policy == "retrying"].attempts
    assert attempts_three.max() <= 3 < attempts_five.max()
    # The requests that needed no retry at all end exactly alike (same model, same attempt draws).
    first_time = (attempts_three == 1).to_numpy()
    columns = ["status", "latency_s", "cost_usd"]
    pd.testing.assert_frame_equal(three[three.policy == "retrying"][columns][first_time].reset_index(drop=True),
                                  five[five.policy == "retrying"][columns][first_time].reset_index(drop=True))


def test_a_model_s_draws_follow_its_name_not_its_place():
    """Renaming nothing but reordering the catalogue moves no draw: the variates of a
    (model, attempt) are a function of its name."""
    from sim.rng import draw_block

    a = draw_block(7, 0, 0, 500, ["x", "y"], 2)
    b = draw_block(7, 0, 0, 500, ["y", "z", "x"], 4)
    for field in ("ttft_z", "tps_z", "error_u", "quality_u", "judge_u"):
        assert (getattr(a, field)[:, 0, :] == getattr(b, field)[:, 2, :2]).all(), field
        assert (getattr(a, field)[:, 1, :] == getattr(b, field)[:, 0, :2]).all(), field
    assert (a.retry_u == b.retry_u[:, :2]).all()
    # Different names, different draws.
    assert (a.ttft_z[:, 0, 0] != a.ttft_z[:, 1, 0]).mean() > 0.99
