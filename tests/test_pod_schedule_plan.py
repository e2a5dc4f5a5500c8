"""Scheduled pods end to end: the MILP's schedule is what the simulator runs and what billing prices."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import plan_doubles as D
from planner import billing
from planner.capacity import world as capacity_world
from planner.optimize.loop import plan
from planner.sim import LinearStepModel, ReplicaSetup, SchedulerConfig
from planner.traffic import Workload


def _steps(rate_per_hour: list[float]) -> Workload:
    t = []
    for i, r in enumerate(rate_per_hour):
        n = int(r * 3600)
        t.extend(i * 3600.0 + (np.arange(n) + 0.5) / r)
    arr = np.array(t)
    return Workload(arr, np.full(len(arr), 500), np.full(len(arr), 100), 3600.0 * len(rate_per_hour))


def test_the_plans_pod_schedule_is_what_gets_simulated():
    calls: list[dict] = []

    def simulate_fleet(profile, gpu, tp, workload, **kwargs):
        calls.append(dict(kwargs))
        kwargs.pop("pod_schedule_slot_s", None)
        kwargs.pop("pod_provision_s", None)
        schedule = kwargs.pop("pod_schedule", None)
        kwargs["pods"] = max(schedule) if schedule else kwargs["pods"]
        return D.fake_simulate_fleet(profile, gpu, tp, workload, **kwargs)

    backend = D.backend()
    backend.simulate_fleet = simulate_fleet
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                        candidates={"gpus": ["small"], "tensor_parallel_sizes": [1], "billing": ["pod"]},
                        billing={"pod_provisioning_delay_seconds": 120.0}, optimizer__scenarios=1)
    result, _ = plan(profile, backend=backend, use_cache=False, workload=_steps([1.0, 1.0, 5.0, 5.0]))
    pods = next(e for e in result.plan if e.billing == "pod")
    assert result.pod_schedule == "per_slot"
    assert pods.pods_per_slot[:2] == [1, 1] and pods.pods_per_slot[2] > 1  # fewer pods in the quiet hours
    scheduled = [c for c in calls if c.get("pod_schedule")]
    assert scheduled and scheduled[-1]["pod_schedule"] == pods.pods_per_slot
    assert scheduled[-1]["pod_schedule_slot_s"] == 3600.0 and scheduled[-1]["pod_provision_s"] == 120.0
    assert result.solver is not None and result.solver.proven_optimal
    sched = next(d for d in result.deploy if d["billing"] == "pod")["schedule"]
    starts = [ev for ev in sched["events"] if ev["action"] == "start"]
    assert starts and starts[0]["offset_s"] == 2 * 3600.0 - 120.0  # started early, ready at its slot


def test_a_scheduled_pod_is_ready_when_its_traffic_arrives_and_billed_from_its_start(monkeypatch):
    setup = ReplicaSetup(
        step_model=LinearStepModel(fixed_s=0.01, per_context_token_s=1e-6, per_prefill_token_s=1e-5),
        num_gpu_blocks=2000,
        engine_args=SchedulerConfig(max_num_seqs=64, max_num_batched_tokens=2048, max_model_len=4096,
                                    block_size=16, enable_chunked_prefill=True),
    )
    candidate = SimpleNamespace(replica_setup=lambda: setup)
    monkeypatch.setattr(capacity_world, "Candidate", SimpleNamespace(build=lambda profile, gpu, tp: candidate))
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    # Quiet first hour, then two requests at once just after the second slot starts.
    arrivals = np.array([100.0, 3600.5, 3600.5])
    wl = Workload(arrivals, np.full(3, 500), np.full(3, 50), 7200.0)
    out = capacity_world.simulate_fleet(profile, "small", 1, wl, pods=2, pod_schedule=[1, 2],
                                        pod_schedule_slot_s=3600.0, pod_provision_s=300.0)
    pods = sorted(out.workers, key=lambda w: w.started_at)
    assert [(w.started_at, w.ready_at) for w in pods] == [(0.0, 0.0), (3300.0, 3600.0)]
    rec = out.records
    # Both slot-2 requests start at once on the two pods: the scheduled one was ready in time.
    assert set(rec.replica[1:].tolist()) == {0, 1}
    assert np.all(rec.first_token_at[1:] - rec.arrival_at[1:] < 0.1)
    prices = billing.ResolvedPrices(gpu_id="small", pod_cloud="secure", pod_provider="test",
                                    pod_usd_per_gpu_hour=3.6, pod_price_label="test")
    cost = billing.price_outcome(out, prices, 7200.0)
    # 2 h of the first pod + (1 h + 300 s of provisioning) of the second, at $3.60/h.
    assert cost.cost_usd == pytest.approx(3.6 * (2.0 + 1.0 + 300.0 / 3600.0))
