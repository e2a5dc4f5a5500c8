"""Fleet behaviour the serverless autoscaler and billing rely on."""

from __future__ import annotations

import numpy as np
import pytest

from planner.errors import PlannerError
from planner.sim import FleetObserver, FleetSpec, LinearStepModel, WorkerState, simulate
from planner.sim.fleet import Fleet
from sim_helpers import poisson_workload, setup, workload

MODEL = LinearStepModel(fixed_s=0.010, per_prefill_token_s=0.001)


def test_pods_span_the_horizon_and_least_outstanding_spreads_load():
    wl = workload([0.0, 0.001, 0.002, 0.003], [4, 4, 4, 4], [50, 50, 50, 50], horizon_s=10.0)
    out = simulate(wl, setup(MODEL), FleetSpec(pods=2), None)
    assert out.records.replica.tolist() == [0, 1, 0, 1]
    assert [(w.kind, w.started_at, w.ready_at, w.stopped_at) for w in out.workers] == [
        ("pod", 0.0, 0.0, 10.0), ("pod", 0.0, 0.0, 10.0)]
    assert all(0 < w.busy_s < 10 for w in out.workers)
    assert out.metrics.simulated_seconds == 10.0


def test_round_robin_ignores_load():
    wl = workload([0.0, 0.001, 0.002], [4, 4, 4], [500, 1, 1], horizon_s=1.0)
    out = simulate(wl, setup(MODEL), FleetSpec(pods=2), None, router="round_robin")
    assert out.records.replica.tolist() == [0, 1, 0]


class _ColdStartScaler(FleetObserver):
    """Test double of a serverless scaler: one flex worker per queued request, idle timeout 1 s."""

    def __init__(self, cold_start_s, idle_timeout_s=1.0):
        self.cold_start_s = cold_start_s
        self.idle_timeout_s = idle_timeout_s

    def on_queued(self, fleet, request):
        starting = [w for w in fleet.live_workers("flex") if w.state == WorkerState.STARTING]
        if len(starting) < fleet.num_queued:
            fleet.add_worker("flex", ready_delay_s=self.cold_start_s, max_outstanding=1)

    def on_worker_idle(self, fleet, worker):
        since = worker.idle_since

        def reaper():
            yield fleet.env.timeout(self.idle_timeout_s)
            if worker.idle_since == since and worker.state == WorkerState.READY:
                fleet.stop_worker(worker)

        fleet.env.process(reaper())


def _attach_scaler(monkeypatch, scaler):
    import planner.sim.simulation as simulation

    class Attach:
        @staticmethod
        def attach(fleet, spec):
            fleet.observers.append(scaler)

    # A test double in place of planner.sim.serverless, whatever its state.
    import planner.sim

    monkeypatch.setitem(__import__("sys").modules, "planner.sim.serverless", Attach)
    monkeypatch.setattr(planner.sim, "serverless", Attach, raising=False)
    monkeypatch.setattr(simulation, "Fleet", Fleet)


def test_workers_added_later_become_ready_after_their_cold_start(monkeypatch):
    _attach_scaler(monkeypatch, _ColdStartScaler(cold_start_s=2.0))
    # No pods. Request 0 (t 0) waits in the fleet queue for worker 0's 2 s cold start; request 1
    # (t 0.5) for worker 1's (ready 2.5, while worker 0 is still busy with request 0).
    wl = workload([0.0, 0.5, 10.0], [4, 4, 4], [100, 3, 3], horizon_s=20.0)
    out = simulate(wl, setup(MODEL), FleetSpec(pods=0, serverless=object()), None)
    r = out.records
    assert r.admitted_at[:2].tolist() == pytest.approx([2.0, 2.5])
    assert r.replica.tolist() == [0, 1, 2]
    assert r.first_token_at[0] - r.arrival_at[0] == pytest.approx(2.0 + 0.014)  # TTFT shows the wait
    w0, w1, w2 = out.workers
    assert (w0.kind, w0.started_at, w0.ready_at) == ("flex", 0.0, 2.0)
    assert (w1.started_at, w1.ready_at) == (0.5, 2.5)
    # worker 0 finishes at 2.0 + .014 + 99 x .010 = 3.004, idles 1 s, stops; worker 1 at 2.534 + 1
    assert w0.stopped_at == pytest.approx(4.004)
    assert w1.stopped_at == pytest.approx(3.534)
    assert w1.busy_s == pytest.approx(0.034)
    # request 2 at t = 10 finds no worker: a new cold start
    assert r.admitted_at[2] == pytest.approx(12.0)
    assert (w2.started_at, w2.ready_at) == (10.0, 12.0) and w2.stopped_at == pytest.approx(13.034)


def test_a_worker_ready_with_nothing_to_do_is_idle(monkeypatch):
    scaler = _ColdStartScaler(cold_start_s=2.0)
    _attach_scaler(monkeypatch, scaler)
    # Request 1 queues behind worker 0's cold start and starts worker 1, but worker 0 frees
    # first (at 2.034) and takes it; worker 1 becomes ready idle at 2.5 and stops 1 s later.
    wl = workload([0.0, 0.5], [4, 4], [3, 3], horizon_s=5.0)
    out = simulate(wl, setup(MODEL), FleetSpec(pods=0, serverless=object()), None)
    assert out.records.replica.tolist() == [0, 0]
    assert out.records.admitted_at[1] == pytest.approx(2.034)
    assert out.workers[1].ready_at == 2.5 and out.workers[1].stopped_at == pytest.approx(3.5)
    assert out.workers[1].busy_s == 0.0


def test_stop_while_busy_drains_then_stops():
    # Pod 1 idle -> stops at once; pod 0 busy -> drains (keeps its request) and stops when done.
    import simpy

    env = simpy.Environment()
    s = setup(MODEL)
    fleet = Fleet(env, s, s.scheduler_config, 1)
    p0, p1 = fleet.add_worker(), fleet.add_worker()
    fleet.start_arrivals([0.0], [4], [100])
    env.run(until=0.1)
    assert p0.num_outstanding == 1
    fleet.stop_worker(p1)
    assert p1.state == WorkerState.STOPPED and p1.stopped_at == 0.1
    fleet.stop_worker(p0)
    assert p0.state == WorkerState.DRAINING
    env.run(until=fleet.all_resolved)
    assert p0.state == WorkerState.STOPPED
    assert p0.stopped_at == pytest.approx(0.014 + 99 * 0.010)
    assert fleet.num_in_progress == 0


def test_pod_schedule_scales_up_with_provisioning_and_down_by_draining():
    # 1 pod in slot 0 (10 s), 3 in slot 1, 1 in slot 2; provisioning takes 2 s.
    wl = poisson_workload(5.0, 30.0, 50, 20, seed=1)
    spec = FleetSpec(pod_schedule=[1, 3, 1], pod_schedule_slot_s=10.0, pod_provision_s=2.0)
    out = simulate(wl, setup(MODEL), spec, None)
    spans = out.workers
    assert len(spans) == 3
    assert [(s.started_at, s.ready_at) for s in spans] == [(0.0, 0.0), (10.0, 12.0), (10.0, 12.0)]
    # scale-down at 20 s drains the two newest
    assert all(20.0 <= s.stopped_at < 21.0 for s in spans[1:])
    assert spans[0].stopped_at == out.metrics.simulated_seconds
    r = out.records
    late = (r.arrival_at > 12.5) & (r.arrival_at < 19.5)
    assert set(r.replica[late].tolist()) == {0, 1, 2}
    assert set(r.replica[r.arrival_at > 21.0].tolist()) == {0}
    prewarm = simulate(wl, setup(MODEL), spec.model_copy(update={"pod_prewarm": True}), None)
    assert [(s.started_at, s.ready_at) for s in prewarm.workers[1:]] == [(8.0, 10.0), (8.0, 10.0)]


def test_no_capacity_is_a_clear_error():
    wl = workload([0.0], [4], [4], horizon_s=1.0)
    with pytest.raises(PlannerError, match="no pods"):
        simulate(wl, setup(MODEL), FleetSpec(pods=0), None)


def test_requests_left_when_capacity_ends_are_unserved():
    # A schedule that drops to 0 pods: requests after that can never be served.
    wl = workload([0.0, 15.0], [4, 4], [3, 3], horizon_s=20.0)
    out = simulate(wl, setup(MODEL), FleetSpec(pod_schedule=[1, 0], pod_schedule_slot_s=10.0), None)
    assert out.records.rejected_reason.tolist() == ["", "unserved_at_end"]
    assert out.metrics.completed == 1


def test_metrics_series_and_slo():
    from types import SimpleNamespace

    wl = poisson_workload(4.0, 60.0, 200, 50, seed=2)
    slo = SimpleNamespace(ttft_seconds=0.3, tpot_seconds=0.02, attainment=0.9)
    m = simulate(wl, setup(MODEL), FleetSpec(pods=1), slo, series_bin_s=10.0).metrics
    assert m.series.bin_seconds == 10.0 and len(m.series.batch_size) >= 6
    assert 0 < m.kv_cache_usage_mean < 1 and m.batch_size_mean > 0
    assert m.slo_attainment is not None and 0 <= m.slo_attainment <= 1
    assert m.slo_met == (m.slo_attainment >= 0.9)
    assert m.goodput_requests_per_second <= m.throughput.requests_per_second + 1e-12
    assert np.isclose(m.series.live_workers[0], 1.0)


def test_pods_first_router_overflows_to_other_workers_only_when_pods_are_full():
    import simpy

    env = simpy.Environment()
    s = setup(MODEL)
    fleet = Fleet(env, s, s.scheduler_config, 4, router="pods_first")
    fleet.add_worker("flex", max_outstanding=5)
    fleet.add_worker("pod", max_outstanding=2)
    fleet.start_arrivals([0.0, 0.0, 0.0, 0.0], [4] * 4, [50] * 4)
    env.run(until=0.001)
    # the pod (worker 1) takes two, the flex worker the overflow, though it had fewer outstanding
    assert [w.num_outstanding for w in fleet.workers] == [2, 2]
