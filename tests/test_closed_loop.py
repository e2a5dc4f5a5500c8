"""Closed-loop users: schedule by hand, one request in flight per user, Little's law, bounds,
determinism, jump mode = step mode, profile validation and the benchmark API."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.inputs.profile import ExponentialThink, FixedSizes, Profile, UniformSizes, UniformThink
from planner.sim import FleetSpec, LinearStepModel, simulate
from planner.scenario import bench_closed_loop
from planner.traffic.closed_loop import ClosedLoop, fixed_closed_loop
from sim_helpers import setup as make_setup

LINEAR = LinearStepModel(fixed_s=0.01, per_decode_s=0.001)


def _check_users(out, loop):
    """Each user's requests follow one another: the next is sent exactly at the previous one's
    finish (or refusal) + its think time, so a user never has two requests in flight."""
    r, user = out.records, out.user
    draws = loop.draws()
    draws.ensure(len(r))
    assert user is not None and len(user) == len(r)
    assert sorted(set(user.tolist())) == list(range(min(loop.users, len(r))))
    for u in range(loop.users):
        mine = np.flatnonzero(user == u)
        assert r.arrival_at[mine[0]] == 0.0  # the first wave starts at t = 0
        done_at = np.where(np.isnan(r.finished_at), r.arrival_at, r.finished_at)[mine[:-1]]
        think = np.asarray(draws.think_s)[mine[:-1]]
        np.testing.assert_allclose(r.arrival_at[mine[1:]], done_at + think, rtol=0, atol=1e-9)
        assert np.all(r.arrival_at[mine[1:]] >= done_at)


def _loop(users=3, think=0.0, sizes=((50, 200), (1, 40)), horizon_s=None, max_requests=None, seed=0, **kw):
    (plo, phi), (olo, ohi) = sizes
    return ClosedLoop(
        users=users,
        think=think,
        sizes=UniformSizes(distribution="uniform", prompt_tokens=[plo, phi], output_tokens=[olo, ohi]),
        horizon_s=horizon_s,
        max_requests=max_requests,
        seed=seed,
        **kw,
    )


def test_hand_checked_schedule_of_a_fixed_loop():
    # 4 users, 100/10 tokens, 3 requests each. Every wave is one prefill step (fixed 0.01 s, no
    # per-token cost) then 9 decode steps of 0.01 + 4 x 0.001 = 0.014 s: a wave lasts 0.136 s,
    # and with the whole batch finishing at once the next wave starts at that same instant.
    out = simulate(fixed_closed_loop(4, 100, 10, 3), make_setup(LINEAR), FleetSpec(pods=1))
    r = out.records
    assert len(r) == 12
    wave = np.repeat([0.0, 0.136, 0.272], 4)
    np.testing.assert_allclose(r.arrival_at, wave, atol=1e-12)
    np.testing.assert_allclose(r.first_token_at, wave + 0.01, atol=1e-12)
    np.testing.assert_allclose(r.finished_at, wave + 0.136, atol=1e-12)
    assert out.metrics.ttft_seconds.mean == pytest.approx(0.01)
    assert out.metrics.tpot_seconds.mean == pytest.approx(0.014)
    assert out.metrics.simulated_seconds == pytest.approx(0.408)
    assert out.workload is not None and len(out.workload) == 12


def test_a_request_sent_mid_batch_joins_at_the_next_step():
    # Two users with different output lengths (fixed sizes per request index): user 0's short
    # request finishes while user 1's is still decoding; user 0's next request is sent at once
    # but joins at the step boundary after the one that started at its predecessor's finish.
    loop = ClosedLoop(users=2, sizes=FixedSizes(distribution="fixed", prompt_tokens=10, output_tokens=3),
                      max_requests=3)
    out = simulate(loop, make_setup(LINEAR), FleetSpec(pods=1))
    r = out.records
    # Both first requests: prefill 0.01 s, then 2 decode steps of 0.012 s -> finish at 0.034.
    np.testing.assert_allclose(r.finished_at[:2], [0.034, 0.034])
    np.testing.assert_allclose(r.arrival_at[2], 0.034)
    assert r.admitted_at[2] == pytest.approx(0.034)  # the replica was idle: it starts at once


@pytest.mark.parametrize("think", [0.0, 0.5, UniformThink(distribution="uniform", seconds=[0.0, 2.0])])
def test_each_user_waits_for_its_previous_request_plus_think_time(think):
    loop = _loop(users=5, think=think, horizon_s=30.0)
    sim_setup = make_setup(LinearStepModel(fixed_s=0.005, per_decode_s=0.0005, per_prefill_token_s=2e-5))
    out = simulate(loop, sim_setup, FleetSpec(pods=2))
    assert np.all(out.records.arrival_at < 30.0)
    _check_users(out, loop)


def test_littles_law_holds():
    users, think = 8, 1.0
    loop = _loop(users=users, think=think, horizon_s=400.0)
    sim_setup = make_setup(LinearStepModel(fixed_s=0.01, per_decode_s=0.001, per_prefill_token_s=1e-5))
    out = simulate(loop, sim_setup, FleetSpec(pods=1))
    _check_users(out, loop)
    r = out.records
    e2e = r.finished_at - r.arrival_at
    # A closed system keeps N = X (R + Z) users busy or thinking: X = N / (R + Z). Measured over
    # the requests finished by the last send (the run's end drains without new sends).
    last_send = r.arrival_at.max()
    done = r.finished_at <= last_send
    assert done.sum() / last_send == pytest.approx(users / (e2e[done].mean() + think), rel=0.03)


def test_request_budget_and_horizon_bounds():
    sim_setup = make_setup(LINEAR)
    by_count = simulate(_loop(users=4, max_requests=25), sim_setup, FleetSpec(pods=1))
    assert len(by_count.records) == 25 and by_count.metrics.completed == 25
    by_time = simulate(_loop(users=4, horizon_s=2.0), sim_setup, FleetSpec(pods=1))
    assert by_time.records.arrival_at.max() < 2.0
    assert by_time.metrics.completed == len(by_time.records)  # in-flight ones are served to the end
    both = simulate(_loop(users=4, horizon_s=2.0, max_requests=5), sim_setup, FleetSpec(pods=1))
    assert len(both.records) == 5
    assert both.workload.horizon_s == 2.0


def test_determinism_with_the_seed():
    sim_setup = make_setup(LINEAR)
    a = simulate(_loop(users=6, think=ExponentialThink(distribution="exponential", mean_seconds=0.2), horizon_s=5.0, seed=3),
                 sim_setup, FleetSpec(pods=2))
    b = simulate(_loop(users=6, think=ExponentialThink(distribution="exponential", mean_seconds=0.2), horizon_s=5.0, seed=3),
                 sim_setup, FleetSpec(pods=2))
    c = simulate(_loop(users=6, think=ExponentialThink(distribution="exponential", mean_seconds=0.2), horizon_s=5.0, seed=4),
                 sim_setup, FleetSpec(pods=2))
    for name, col in a.records.columns().items():
        np.testing.assert_array_equal(col, b.records.columns()[name], err_msg=name)
    assert not np.array_equal(a.records.prompt_tokens[:20], c.records.prompt_tokens[:20])


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    users=st.integers(1, 12),
    pods=st.integers(1, 3),
    think=st.sampled_from([0.0, 0.05, 0.3]),
    seed=st.integers(0, 1000),
    max_num_seqs=st.sampled_from([2, 8, 64]),
    num_gpu_blocks=st.sampled_from([30, 1000]),
    async_scheduling=st.booleans(),
)
def test_jump_mode_equals_step_mode(users, pods, think, seed, max_num_seqs, num_gpu_blocks, async_scheduling):
    loop = _loop(users=users, think=think, max_requests=40, seed=seed, max_model_len=240)
    sim_setup = make_setup(
        LinearStepModel(fixed_s=0.004, per_decode_s=0.0003, per_context_token_s=2e-6, per_prefill_token_s=1e-5),
        num_gpu_blocks=num_gpu_blocks, max_num_seqs=max_num_seqs, max_model_len=240,
        async_scheduling=async_scheduling,
    )
    a = simulate(loop, sim_setup, FleetSpec(pods=pods), jump=True)
    b = simulate(loop, sim_setup, FleetSpec(pods=pods), jump=False)
    for name, col in a.records.columns().items():
        other = b.records.columns()[name]
        if col.dtype.kind == "f":
            np.testing.assert_allclose(col, other, rtol=1e-9, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(col, other, err_msg=name)


def test_a_refused_request_does_not_stop_its_user():
    # Every size is too long for max_model_len 100 (no capping: the loop has no max_model_len),
    # so each request is refused at once and the user sends the next one after its think time.
    loop = ClosedLoop(users=2, think=1.0, sizes=FixedSizes(distribution="fixed", prompt_tokens=90, output_tokens=20),
                      horizon_s=3.5)
    out = simulate(loop, make_setup(LINEAR, max_model_len=100, max_num_batched_tokens=2048), FleetSpec(pods=1))
    assert out.metrics.rejected == len(out.records) == 8  # sends at 0, 1, 2, 3 s by each user
    np.testing.assert_allclose(sorted(out.records.arrival_at), np.repeat([0.0, 1.0, 2.0, 3.0], 2))


def test_bench_api_returns_mean_ttft_and_tpot():
    res = bench_closed_loop(None, None, users=4, prompt_tokens=100, output_tokens=10, requests_per_user=3,
                            setup=make_setup(LINEAR))
    assert res.mean_ttft_s == pytest.approx(0.01)
    assert res.mean_tpot_s == pytest.approx(0.014)
    assert len(res.outcome.records) == 12


def test_bench_api_builds_a_real_replica():
    res = bench_closed_loop("llama-3.1-8b", "h100-sxm", 1, users=8, prompt_tokens=512, output_tokens=64,
                            requests_per_user=2)
    assert len(res.outcome.records) == 16
    assert 0 < res.mean_tpot_s < res.mean_ttft_s * 10


# ----------------------------------------------------------------------------------- the profile
BASE = {
    "model": {"name": "llama-3.1-8b"},
    "slo": {"ttft_seconds": 1, "tpot_seconds": 0.1},
    "candidates": {"gpus": ["h100-sxm"]},
}


def _profile(traffic):
    return Profile.from_dict({**BASE, "traffic": traffic})


def test_profile_accepts_closed_arrivals_with_number_or_distribution():
    sizes = {"distribution": "fixed", "prompt_tokens": 100, "output_tokens": 10}
    p = _profile({"arrivals": {"process": "closed", "users": 50}, "sizes": sizes, "requests": 500})
    assert p.traffic.closed_loop and p.traffic.arrivals.think_time_seconds == 0.0
    assert p.traffic.default_horizon_seconds is None
    p = _profile({"arrivals": {"process": "closed", "users": 5, "think_time_seconds": 2.5}, "sizes": sizes,
                  "horizon_seconds": 60})
    assert p.traffic.arrivals.think_time_seconds == 2.5
    p = _profile({"arrivals": {"process": "closed", "users": 5,
                               "think_time_seconds": {"distribution": "lognormal", "median": 5, "p90": 20}},
                  "sizes": sizes, "horizon_seconds": 60})
    assert p.traffic.arrivals.think_time_seconds.mu_sigma()[0] == pytest.approx(np.log(5))


@pytest.mark.parametrize(
    "traffic, needle",
    [
        ({"arrivals": {"process": "closed", "users": 5}}, "needs a bound"),
        ({"arrivals": {"process": "closed", "users": 0}, "requests": 5}, "users: must be > 0"),
        ({"arrivals": {"process": "closed", "users": 5, "think_time_seconds": -1}, "requests": 5}, "think_time_seconds"),
        ({"arrivals": {"process": "closed", "users": 5}, "requests": 0}, "traffic.requests: must be > 0"),
        ({"arrivals": {"process": "poisson", "rate_per_s": 1}, "requests": 10}, "closed-loop arrivals only"),
        ({"arrivals": {"process": "closed", "users": 5,
                       "think_time_seconds": {"distribution": "uniform", "seconds": [3, 1]}}, "requests": 5},
         "think_time_seconds"),
    ],
)
def test_profile_rejects_bad_closed_loops_with_one_line(traffic, needle):
    from pydantic import ValidationError

    from planner.inputs.profile import validation_message

    traffic = {"sizes": {"distribution": "fixed", "prompt_tokens": 100, "output_tokens": 10}, **traffic}
    with pytest.raises(ValidationError) as err:
        _profile(traffic)
    msg = validation_message(err.value)
    assert needle in msg and "\n" not in msg, msg


def test_closed_loop_needs_a_bound_in_the_api_too():
    with pytest.raises(PlannerError, match="bound"):
        ClosedLoop(users=2, sizes=FixedSizes(distribution="fixed", prompt_tokens=1, output_tokens=1))


# ------------------------------------------------------------------------------------- the CLI
def _closed_profile(tmp_path, **traffic):
    import yaml

    from planner.resources import data_dir

    data = yaml.safe_load((data_dir("traffic_profiles") / "closed.yaml").read_text())
    data["traffic"].update(traffic)
    data["traffic"] = {k: v for k, v in data["traffic"].items() if v is not None}
    path = tmp_path / "closed_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_simulate_and_traffic_on_a_closed_loop(tmp_path):
    import json

    from typer.testing import CliRunner

    from planner.cli import app

    path = _closed_profile(tmp_path, horizon_seconds=None, requests=60)
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", "-p", str(path), "-g", "h100-sxm", "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["requests"] == 60 and metrics["completed"] == 60
    res = runner.invoke(app, ["simulate", "-p", str(path), "-g", "h100-sxm"])
    assert res.exit_code == 0 and "50 users in a closed loop, 60 requests sent" in res.output
    res = runner.invoke(app, ["traffic", "-p", str(path), "--json"])
    stats = json.loads(res.stdout)
    assert stats["process"] == "closed" and stats["users"] == 50 and stats["requests"] == 60
    assert stats["mean_think_time_seconds"] == 5.0 and stats["sample_requests"] == 60
    res = runner.invoke(app, ["traffic", "-p", str(path)])
    assert res.exit_code == 0 and "depends on the engine" in res.output
    res = runner.invoke(app, ["traffic", "-p", str(path), "--plot", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "closed loop" in res.output


def test_compare_sweeps_users_on_a_closed_loop():
    from planner.catalog import get_gpu
    from planner.compare import compare
    from planner.inputs.profile import load_profile

    profile = load_profile("traffic_profiles/closed.yaml")
    traffic = profile.traffic.model_copy(update={"horizon_seconds": 120.0})
    profile = profile.model_copy(update={"traffic": traffic})
    result = compare(profile, get_gpu("h100-sxm"), load_factors=(0.02, 0.1, 1.0), extend_steps=0)
    assert result.users == 50
    users = [p.users for p in result.sweep]
    assert users == [1, 5, 50]  # 0.02 x 50 = 1 user; each load once
    rates = [p.mean_rate_per_s for p in result.sweep]
    assert rates == sorted(rates) and rates[0] > 0  # more users, more requests per second
    assert result.num_requests > 50 and result.horizon_s == 120.0


def test_output_spread_draws_lengths_around_osl_and_unlocks_the_users():
    # Exact lengths: four users prefilled in one step stay in lockstep (one distinct first-token
    # instant per wave). Output lengths spread +-10%: drawn in [90, 110], seeded, mean near 100,
    # and the users no longer share every first-token instant.
    assert isinstance(fixed_closed_loop(4, 100, 100, 3).sizes, FixedSizes)
    loop = fixed_closed_loop(4, 100, 100, 6, output_spread=0.10, seed=3)
    prompt, output = loop.sizes_sample(400)
    assert set(prompt.tolist()) == {100}
    assert output.min() >= 90 and output.max() <= 110 and abs(output.mean() - 100) < 2
    np.testing.assert_array_equal(output, fixed_closed_loop(4, 100, 100, 6, output_spread=0.10, seed=3).sizes_sample(400)[1])
    locked = simulate(fixed_closed_loop(4, 100, 100, 6), make_setup(LINEAR), FleetSpec(pods=1)).records
    spread = simulate(loop, make_setup(LINEAR), FleetSpec(pods=1)).records
    assert len(np.unique(locked.first_token_at)) == 6
    assert len(np.unique(spread.first_token_at)) > 6
    with pytest.raises(PlannerError, match="output_spread"):
        fixed_closed_loop(4, 100, 100, 3, output_spread=1.5)
