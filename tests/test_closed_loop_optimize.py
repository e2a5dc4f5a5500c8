"""planner optimize on closed-loop users: capacity in users (integer bisection), the MILP over N
users, verification that splits the users over the plan's endpoints, and the users wording."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.capacity import CandidateCheck, CapacityResult, max_users_under_slo
from planner.errors import PlannerError
from planner.inputs.profile import Profile
from planner.optimize.verify import split_users


@settings(max_examples=60, deadline=None, derandomize=True)
@given(threshold=st.integers(0, 5000), hint=st.integers(1, 6000))
def test_users_bisection_finds_the_last_passing_user_count(threshold, hint):
    found = max_users_under_slo(lambda u: 1.0 if u <= threshold else 0.5, 0.95, hint)
    # Exact below 50 users, within 2% above (the bisection's tolerance); never above the threshold.
    assert threshold - max(0.0, 0.02 * threshold) <= found.users <= threshold
    if threshold < 50:
        assert found.users == threshold
    assert len(found.evaluations) <= 22


def test_users_bisection_stops_within_tolerance_on_large_counts():
    found = max_users_under_slo(lambda u: 1.0 if u <= 50_000 else 0.0, 0.95, 10, max_evaluations=40)
    assert 50_000 * 0.98 <= found.users <= 50_000


@settings(max_examples=40, deadline=None, derandomize=True)
@given(users=st.integers(0, 500), weights=st.lists(st.floats(0, 10), min_size=1, max_size=5))
def test_split_users_is_whole_and_proportional(users, weights):
    parts = split_users(users, np.asarray(weights))
    assert sum(parts) == users and all(p >= 0 for p in parts)
    w = np.asarray(weights) / sum(weights) if sum(weights) > 0 else np.full(len(weights), 1 / len(weights))
    assert all(abs(p - users * x) < 1.0 for p, x in zip(parts, w))


# ------------------------------------------------------------------ the loop, with test doubles
CAP_USERS = {"small": 20, "big": 70}
POD_USD_PER_HOUR = {"small": 0.5, "big": 1.2}


def _profile(users=50, **traffic):
    return Profile.from_dict({
        "model": {"name": "llama-3.1-8b"},
        "traffic": {"arrivals": {"process": "closed", "users": users, "think_time_seconds": 1.0},
                    "sizes": {"distribution": "fixed", "prompt_tokens": 100, "output_tokens": 10},
                    "horizon_seconds": 600, **traffic},
        "slo": {"ttft_seconds": 1.0, "tpot_seconds": 0.1},
        "candidates": {"gpus": ["small", "big"], "billing": ["pod"]},
    })


def _backend(calls):
    """A PlanningBackend of hand-computable doubles (capacities CAP_USERS, a fluid closed loop)."""
    from planner.billing import ResolvedPrices

    def check(profile, gpu, tp, p50, p99):
        return CandidateCheck(gpu_id=gpu, tensor_parallel_size=tp, fits=True)

    def caps(tasks, *, cache=None, workers=1):
        assert all(t.closed for t in tasks)
        return [CapacityResult(gpu_id=t.gpu_id, tensor_parallel_size=t.tensor_parallel_size, bucket=t.bucket,
                               max_rate_per_s=1.0, source="simulated", max_users=CAP_USERS[t.gpu_id]) for t in tasks]

    def simulate_fleet(profile, gpu, tp, loop, *, pods, active_workers=0, max_workers=0, seed=0):
        # A fluid closed loop: every user sends one request every 2 s; all meet the SLO while the
        # pods hold the users (CAP_USERS each), else none do.
        users = getattr(loop, "users", 0)
        calls.append((gpu, pods, users))
        n = int(users * loop.horizon_s / 2.0)
        arrival = np.sort(np.tile(np.arange(0.0, loop.horizon_s, 2.0), max(users, 1))[:n])
        ok = users <= pods * CAP_USERS[gpu]
        first = arrival + (0.2 if ok else 5.0)
        records = SimpleNamespace(arrival_at=arrival, first_token_at=first, finished_at=first + 0.5,
                                  output_tokens=np.full(n, 10))
        spans = [SimpleNamespace(kind="pod", started_at=0.0, ready_at=0.0, stopped_at=None, busy_s=loop.horizon_s,
                                 gpus=tp) for _ in range(pods)]
        return SimpleNamespace(records=records, workers=spans)

    def prices(profile, gpu):
        return ResolvedPrices(gpu_id=gpu, pod_cloud="secure", pod_provider="test",
                              pod_usd_per_gpu_hour=POD_USD_PER_HOUR[gpu], pod_price_label="test")

    return SimpleNamespace(
        check_names=lambda profile: None, check_candidate=check, capacities=caps, simulate_fleet=simulate_fleet,
        resolve_prices=prices, scale_up_seconds=lambda *a: 0.0,
        engine_settings=lambda profile, gpu, tp: {"max_model_len": 8192, "gpu_memory_utilization": 0.9,
                                                  "tensor_parallel_size": tp, "max_num_seqs": 256,
                                                  "max_num_batched_tokens": 8192, "block_size": 16,
                                                  "model": profile.model.name},
        assumptions=lambda profile, uses: [], gpu_fingerprint=lambda gpu: gpu,
    )


def test_plan_buys_replicas_of_users_and_verifies_the_split():
    from planner.optimize.loop import plan

    calls = []
    result, arts = plan(_profile(users=50), backend=_backend(calls), use_cache=False)
    # 50 users at headroom 0.9: small holds 18 -> 3 pods ($1.5/h); big holds 63 -> 1 pod ($1.2/h).
    assert [(e.gpu, e.count) for e in result.plan] == [("big", 1)]
    assert result.users == 50 and result.verified
    assert result.plan[0].capacity_per_s == {"all": 70.0}
    assert ("big", 1, 50) in calls  # verification played all 50 users on the big pod
    single = next(a for a in result.alternatives if a.kind == "single_gpu_pods")
    assert single.feasible
    assert result.demand.rate_per_s[0] == [50.0] and result.demand.bucket_names == ["all"]


def test_plan_on_more_users_than_one_big_replica_holds():
    from planner.optimize.loop import plan

    result, _ = plan(_profile(users=200), backend=_backend([]), use_cache=False)
    big = sum(e.count for e in result.plan if e.gpu == "big")
    small = sum(e.count for e in result.plan if e.gpu == "small")
    # Capacity in users after headroom: 63 per big, 18 per small; 200 users must fit.
    assert big * 63 + small * 18 >= 200
    assert big * POD_USD_PER_HOUR["big"] + small * POD_USD_PER_HOUR["small"] <= math.ceil(200 / 63) * 1.2 + 1e-9


@pytest.mark.parametrize("traffic, needle", [
    ({"horizon_seconds": None, "requests": 100}, "traffic.horizon_seconds"),
])
def test_plan_refuses_what_it_cannot_price(traffic, needle):
    from planner.optimize.loop import plan

    data = {k: v for k, v in traffic.items() if v is not None}
    profile = _profile()
    section = profile.traffic.model_copy(update={"horizon_seconds": None, **data})
    with pytest.raises(PlannerError, match=needle):
        plan(profile.model_copy(update={"traffic": section}), backend=_backend([]), use_cache=False)


# ---------------------------------------------------------------- the real command, end to end
def test_optimize_command_answers_in_users(tmp_path):
    from typer.testing import CliRunner

    from planner.cli import app

    data = yaml.safe_load(open("traffic_profiles/closed.yaml"))
    data["traffic"].update({"horizon_seconds": 120, "arrivals": {"process": "closed", "users": 12,
                                                                  "think_time_seconds": 2.0},
                            "sizes": {"distribution": "fixed", "prompt_tokens": 256, "output_tokens": 32}})
    data["candidates"]["gpus"] = ["l40s"]
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    res = runner.invoke(app, ["optimize", "-p", str(path), "--json", "--no-cache", "--workers", "1", "--no-report"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["users"] == 12 and out["verified"]
    cap = out["capacities"][0]
    assert cap["max_users"] >= 12 and cap["max_rate_per_s"] > 0
    assert out["plan"][0]["count"] == math.ceil(12 / (cap["max_users"] * 0.9))
    res = runner.invoke(app, ["optimize", "-p", str(path), "--no-cache", "--workers", "1",
                              "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "12 concurrent users (closed loop)" in res.output
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "max users" in report and "capacity/replica (users)" in report
