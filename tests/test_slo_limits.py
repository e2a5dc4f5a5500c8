"""The SLO's optional p99 limits (slo.ttft_p99_seconds, slo.tpot_p99_seconds), checked on a simulated
run like attainment, and the misses that waited for a cold start."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import plan_doubles as D
from planner.errors import PlannerError
from planner.inputs.profile import Profile
from planner.optimize.loop import plan
from planner.sim.metrics import p99_limits_missed, waited_for_start
from planner.traffic import Workload


def _slo(**limits):
    return SimpleNamespace(ttft_seconds=2.0, tpot_seconds=0.1, attainment=0.95, **limits)


def test_p99_limits_in_words():
    assert p99_limits_missed(_slo(), 50.0, 1.0) == []  # no limits set: nothing to miss
    assert p99_limits_missed(_slo(ttft_p99_seconds=10.0, tpot_p99_seconds=0.2), 9.0, 0.2) == []
    assert p99_limits_missed(_slo(ttft_p99_seconds=10.0), 52.0, 0.05) == ["p99 TTFT 52 s is above the 10 s limit"]
    missed = p99_limits_missed(_slo(ttft_p99_seconds=10.0, tpot_p99_seconds=0.05), None, 0.06)
    assert len(missed) == 2 and "unknown" in missed[0] and "TPOT" in missed[1]


def test_profile_takes_the_limits_and_refuses_bad_ones():
    base = D.profile({"process": "poisson", "rate_per_s": 1.0}).model_dump(exclude_none=True)
    base["slo"]["ttft_p99_seconds"] = 10
    assert Profile.from_dict(base).slo.ttft_p99_seconds == 10.0
    base["slo"]["tpot_p99_seconds"] = -1
    with pytest.raises(Exception, match="tpot_p99_seconds"):
        Profile.from_dict(base)


def test_waited_for_start_marks_requests_that_arrived_before_their_worker_was_ready():
    spans = [SimpleNamespace(worker_id=0, ready_at=0.0), SimpleNamespace(worker_id=1, ready_at=100.0)]
    records = SimpleNamespace(arrival_at=np.array([5.0, 50.0, 150.0, 60.0]), replica=np.array([0, 1, 1, -1]))
    assert waited_for_start(records, spans).tolist() == [False, True, False, False]


def _steady():
    t = np.arange(3600) * 1.0
    return Workload(t, np.full(len(t), 500), np.full(len(t), 100), 3600.0)


def test_a_p99_limit_fails_verification_like_attainment():
    """Every request of the doubles has TTFT 0.5 s: a 0.4 s p99 limit cannot be met, at 100% attainment."""
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                        slo={"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.95, "ttft_p99_seconds": 0.4})
    result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=_steady())
    v = result.verification
    assert v.slo_attainment == 1.0
    assert not v.verified and not result.verified
    assert v.p99_limits_missed == ["p99 TTFT 0.5 s is above the 0.4 s limit"]
    assert any(r.tightened for r in result.rounds)  # the loop tightened what missed, as for attainment
    assert "p99 limits" in result.notes[-1]
    ok = D.profile({"process": "poisson", "rate_per_s": 1.0},
                   slo={"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.95, "ttft_p99_seconds": 0.6})
    assert plan(ok, backend=D.backend(), use_cache=False, workload=_steady())[0].verified


def test_cold_start_misses_are_counted():
    """Serverless only, a quiet hour then a burst: the burst waits for flex workers to start."""
    t = np.sort(np.concatenate([np.arange(0, 1800, 20.0), 1800 + np.arange(1800) / 4.0]))
    wl = Workload(t, np.full(len(t), 500), np.full(len(t), 100), 3600.0)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                        candidates={"gpus": ["small"], "tensor_parallel_sizes": [1], "billing": ["serverless"]},
                        optimizer={"min_replicas": 0, "max_rounds": 1})
    try:
        result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=wl)
    except PlannerError as err:  # pragma: no cover - the doubles always find a serverless plan
        pytest.fail(str(err))
    v = result.verification
    assert v.slo_misses == round(len(wl) * (1 - v.slo_attainment))
    assert 0 < v.misses_after_cold_start <= v.slo_misses


def test_simulate_says_when_a_p99_limit_fails_the_slo(tmp_path):
    """`planner simulate`: a run within attainment but over a p99 limit does not meet its SLO."""
    import json

    from typer.testing import CliRunner

    from planner.cli import app

    text = """
name: tiny
model: {name: llama-3.1-8b, precision: bf16}
serving: {max_model_len: 4096}
traffic:
  arrivals: {process: poisson, rate_per_s: 2.0}
  sizes: {distribution: fixed, prompt_tokens: 500, output_tokens: 60}
  horizon_seconds: 30
slo: {ttft_seconds: 5.0, tpot_seconds: 0.5, attainment: 0.5, ttft_p99_seconds: 0.001}
candidates: {gpus: [h100-sxm]}
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    out = json.loads(CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", "h100-sxm", "--json"]).stdout)
    m = out["metrics"] if "metrics" in out else out
    assert m["slo_attainment"] == 1.0 and m["slo_met"] is False
    assert m["slo_p99_limits_missed"][0].startswith("p99 TTFT") and "above the 0.001 s limit" in m["slo_p99_limits_missed"][0]
    res = CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", "h100-sxm"])
    assert "NOT met: p99 TTFT" in res.stdout
