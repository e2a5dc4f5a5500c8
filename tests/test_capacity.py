"""Capacity search, buckets and burstiness, the cache, and small probes on the real simulator."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import plan_doubles as D
from planner import capacity as C
from planner.errors import PlannerError
from planner.traffic import Workload

# ------------------------------------------------------------------------------ bisection ---


@pytest.mark.parametrize("true_rate", [0.05, 0.9, 7.3, 140.0])
def test_bisection_brackets_the_true_capacity(true_rate):
    found = C.max_rate_under_slo(lambda r: 1.0 if r <= true_rate else 0.5, 0.95, rate_hint=1.0, max_evaluations=20)
    assert found.rate_per_s <= true_rate
    assert found.rate_per_s >= true_rate / 1.05 - 1e-12
    assert all(att >= 0.95 for r, att in found.evaluations if r <= found.rate_per_s)


def test_bisection_zero_when_nothing_passes():
    found = C.max_rate_under_slo(lambda r: 0.0, 0.95, rate_hint=1.0, max_evaluations=30)
    assert found.rate_per_s == 0.0


# --------------------------------------------------------------------- buckets, burstiness ---


def test_assign_buckets_first_match_then_nearest():
    ranges = [
        SimpleNamespace(prompt_tokens=[1, 1000], output_tokens=[1, 200]),
        SimpleNamespace(prompt_tokens=[1001, 8000], output_tokens=[1, 2000]),
    ]
    buckets = C.buckets_from_ranges(ranges)
    idx = C.assign_buckets(np.array([10, 5000, 20000, 500]), np.array([10, 100, 50, 900]), buckets)
    assert idx.tolist() == [0, 1, 1, 1]
    assert C.buckets_from_ranges(None) == [C.ALL_SIZES]


def test_burstiness_cv():
    rng = np.random.default_rng(1)
    poisson = np.cumsum(rng.exponential(0.5, 5000))
    assert C.local_burstiness_cv(poisson) == pytest.approx(1.0, abs=0.06)
    assert C.local_burstiness_cv(np.arange(1000) * 0.3) == 0.5
    gaps = C.unit_gaps(20000, 2.0, seed=3)
    assert gaps.mean() == pytest.approx(1.0, rel=0.05) and gaps.std() / gaps.mean() == pytest.approx(2.0, rel=0.1)


# -------------------------------------------------------------------------------- the cache ---


def _probe_world(tmp_path):
    profile = D.profile({"process": "poisson", "rate_per_s": 2.0})
    wl = Workload(np.arange(400) * 0.5, np.full(400, 300), np.full(400, 50), 200.0)
    return profile, wl


def _fake_sim_factory(capacity_rate, calls):
    """A replica whose TTFT explodes above `capacity_rate` (fluid queue)."""

    def simulate(profile, gpu, tp, workload):
        calls.append(len(workload))
        rate = (len(workload) - 1) / max(workload.arrival_s[-1], 1e-9)
        delay = 0.1 if rate <= capacity_rate else 5.0
        arr = workload.arrival_s
        rec = SimpleNamespace(arrival_at=arr, first_token_at=arr + delay, finished_at=arr + delay + 1.0)
        return SimpleNamespace(records=rec)

    return simulate


def test_capacities_are_cached_and_keyed(tmp_path):
    profile, wl = _probe_world(tmp_path)
    tasks = C.make_tasks(profile, [("small", 1)], [C.ALL_SIZES], wl, seed=0, num_requests=200)
    cache = C.CapacityCache(tmp_path)
    calls: list[int] = []
    first = C.capacities(tasks, cache=cache, simulate=_fake_sim_factory(3.0, calls))
    assert first[0].source == "simulated" and 2.8 <= first[0].max_rate_per_s <= 3.0
    n = len(calls)
    again = C.capacities(tasks, cache=cache, simulate=_fake_sim_factory(3.0, calls))
    assert len(calls) == n and again[0].source == "cached"
    assert again[0].max_rate_per_s == first[0].max_rate_per_s
    tighter = profile.model_copy(update={"slo": profile.slo.model_copy(update={"ttft_seconds": 1.0})})
    assert C.make_tasks(tighter, [("small", 1)], [C.ALL_SIZES], wl, seed=0, num_requests=200)[0].key != tasks[0].key
    assert C.make_tasks(profile, [("small", 1)], [C.ALL_SIZES], wl, seed=1, num_requests=200)[0].key != tasks[0].key
    no_cache = C.CapacityCache(None)
    C.capacities(tasks, cache=no_cache, simulate=_fake_sim_factory(3.0, calls))
    assert len(calls) > n


# ------------------------------------------------------------------- one real, small probe ---


def test_real_tighter_ttft_lowers_capacity():
    """On the real simulator a replica carries less traffic under a tighter TTFT."""
    wl = Workload(np.arange(300) * 0.1, np.full(300, 1500), np.full(300, 100), 30.0)
    rates = []
    for ttft in (2.0, 0.3):
        profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                            slo={"ttft_seconds": ttft, "tpot_seconds": 0.1, "attainment": 0.95})
        task = C.make_tasks(profile, [("l40s", 1)], [C.ALL_SIZES], wl, seed=0, num_requests=200)[0]
        rates.append(C.run_task(task).max_rate_per_s)
    assert rates[1] < rates[0]


def test_real_probe_finds_a_capacity_that_meets_the_slo():
    """The simulator and step-time model end to end, on a small model and few requests."""
    profile = D.profile(
        {"process": "poisson", "rate_per_s": 1.0},
        model={"name": "llama-3.1-8b"},
        candidates={"gpus": ["h100-sxm"]},
    )
    wl = Workload(np.arange(300) * 0.1, np.full(300, 800), np.full(300, 120), 30.0)
    check = C.check_candidate(profile, "h100-sxm", 1, 800, 920)
    assert check.fits and check.unloaded_ttft_s < 2.0
    task = C.make_tasks(profile, [("h100-sxm", 1)], [C.ALL_SIZES], wl, seed=0, num_requests=200)[0]
    result = C.run_task(task)
    assert result.max_rate_per_s > 0.5
    assert result.attainment_at_max >= profile.slo.attainment
    assert result.in_flight_at_max and result.in_flight_at_max > 0


def test_real_check_rejects_a_model_that_does_not_fit():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, model={"name": "llama-3.1-70b"},
                        candidates={"gpus": ["l4"]})
    check = C.check_candidate(profile, "l4", 1, 500, 600)
    assert not check.fits and check.reason


def test_one_candidate_capacity_is_cached(tmp_path):
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    wl = Workload(np.arange(300) * 0.1, np.full(300, 800), np.full(300, 120), 30.0)

    def ask() -> C.CapacityResult:
        tasks = C.make_tasks(profile, [("h100-sxm", 1)], [C.ALL_SIZES], wl, seed=0, num_requests=200,
                             gpu_fingerprints={"h100-sxm": C.gpu_fingerprint("h100-sxm")})
        return C.capacities(tasks, cache=C.CapacityCache(tmp_path), workers=1)[0]

    first = ask()
    again = ask()
    assert first.source == "simulated" and again.source == "cached"
    assert again.max_rate_per_s == first.max_rate_per_s > 0


def test_cache_dir_check_refuses_a_file_in_the_path_only(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for bad in (blocker, blocker / "sub" / "cache"):
        with pytest.raises(PlannerError, match="is a file, not a folder"):
            C.check_cache_dir(bad)
    fresh = tmp_path / "new" / "cache"
    C.check_cache_dir(fresh)  # missing folders are fine: the cache creates them on first write
    C.check_cache_dir(tmp_path)
    assert not fresh.exists()  # the check writes nothing


def _worded(items):
    """(line, the (GPU, mode) pairs it concerns) per assumption item."""
    from planner.assumption import render

    return [(render(item), {tuple(pair) for pair in item.concerns}) for item in items]


def test_plan_assumptions_say_the_cold_start_is_measured_on_one_model_and_gpu():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})  # llama-3.1-8b
    items = _worded(C.assumptions(profile, {"l40s": {"serverless"}, "h100-sxm": {"serverless", "pod"}}))
    lines = [line for line, _ in items]
    # One line per cold-start default, naming every GPU it applies to (not one per GPU).
    warmups = [a for a in lines if "engine_warmup_seconds" in a]
    assert len(warmups) == 1
    assert "measured for llama-3.1-8b on l40s (" in warmups[0]
    assert "applied as an estimate to h100-sxm: the warm-up grows" in warmups[0]
    about = dict(items)
    assert about[warmups[0]] == {("l40s", "serverless"), ("h100-sxm", "serverless")}


def test_plan_assumptions_price_only_the_billing_modes_used():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    items = _worded(C.assumptions(profile, {"h100-sxm": {"pod"}, "l40s": {"serverless"}}))
    about = dict(items)
    lines = list(about)
    assert [a for a in lines if "pod price" in a] == [next(a for a in lines if a.startswith("h100-sxm: pod price"))]
    tiers = [a for a in lines if "serverless tier" in a and "ambiguous" not in a]
    assert len(tiers) == 1 and tiers[0].startswith("l40s: serverless tier ")
    assert about[tiers[0]] == {("l40s", "serverless")}
    assert about[next(a for a in lines if "pod_provisioning_delay" in a)] == {("h100-sxm", "pod")}
    assert "applied as an estimate" not in "\n".join(lines)  # the serverless GPU is where it was measured
    # Pods only: no serverless settings or tiers at all.
    pods = [line for line, _ in _worded(C.assumptions(profile, {"h100-sxm": {"pod"}}))]
    assert not [a for a in pods if "serverless" in a]




def test_real_check_leaves_out_tp_over_a_gpu_without_an_interconnect_figure():
    """A candidate list crossing GPUs with TP 1 and 2 is the shipped week profile's: a GPU whose
    catalog entry gives no interconnect bandwidth is left out at TP 2 with the reason, not a crash."""
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, model={"name": "llama-3.1-8b"},
                        candidates={"gpus": ["h100-nvl"]})
    check = C.check_candidate(profile, "h100-nvl", 2, 500, 600)
    assert not check.fits and "interconnect" in (check.reason or "")


def test_real_check_leaves_out_a_gpu_whose_catalog_entry_has_no_tensor_rate():
    """rtx-3090's catalog entry has no sourced bf16 rate: the transfer rule cannot scale the measured
    kernels to it, so the optimizer leaves it out with the reason (and `planner perf` says so)."""
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, model={"name": "llama-3.1-8b"},
                        candidates={"gpus": ["rtx-3090"]})
    check = C.check_candidate(profile, "rtx-3090", 1, 500, 600)
    assert not check.fits and "bf16_flops_per_s" in (check.reason or "")
