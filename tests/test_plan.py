"""The planning loop (planner.optimize) on the test doubles: pods, serverless, mixes, refinement, errors."""

from __future__ import annotations

import numpy as np
import pytest

import plan_doubles as D
import planner.optimize.search as S
from planner import capacity
from planner.errors import PlannerError
from planner.optimize.loop import plan
from planner.optimize.search import _milp_inputs, solve_for
from planner.optimize.verify import verify_many
from planner.optimize.world import _entries, _prepare
from planner.traffic import Workload


def _steps(rate_per_step: list[float], step_s: float = 600.0) -> Workload:
    """Deterministic arrivals: a constant rate in each step (evenly spaced)."""
    t = []
    for i, r in enumerate(rate_per_step):
        if r > 0:
            n = int(r * step_s)
            t.extend(i * step_s + (np.arange(n) + 0.5) / r)
    t = np.array(t)
    return Workload(t, np.full(len(t), 500), np.full(len(t), 100), step_s * len(rate_per_step))


def test_steady_high_load_buys_pods():
    profile = D.profile({"process": "poisson", "rate_per_s": 5.0})
    result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=_steps([9.0] * 6))
    assert result.verified
    assert {e.billing for e in result.plan} == {"pod"}
    assert result.cost_per_month_usd <= min(a.cost_per_month_usd for a in result.alternatives if a.cost_per_month_usd)


def test_sparse_bursts_use_serverless():
    # One minute at 8 req/s per hour, nothing else: pods would idle 59 minutes.
    t = 1800.0 + np.arange(480) / 8.0
    wl = Workload(t, np.full(480, 500), np.full(480, 100), 3600.0)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, optimizer__min_replicas=0,
                        slo={"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.5})
    result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=wl)
    assert any(e.billing == "serverless" for e in result.plan)
    pods = next(a for a in result.alternatives if a.kind == "single_gpu_pods")
    assert result.cost_per_month_usd < pods.cost_per_month_usd


def test_base_load_with_bursts_mixes_pods_and_serverless():
    # 1 req/s all hour, 10 req/s for one minute: a pod base plus flex workers for the burst.
    wl = _steps([1.0] * 5 + [1.0] * 4 + [10.0] + [1.0] * 50, step_s=60.0)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                        slo={"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.9})
    result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=wl)
    billings = {e.billing for e in result.plan}
    assert billings == {"pod", "serverless"}, result.plan


def test_tighter_ttft_never_costs_less():
    wl = _steps([3.0, 7.0, 5.0])
    costs = []
    for ttft in (4.0, 2.0, 1.0, 0.5):
        profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                            slo={"ttft_seconds": ttft, "tpot_seconds": 0.1, "attainment": 0.95})
        result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=wl)
        costs.append(result.milp_cost_usd)
    assert costs == sorted(costs)
    assert costs[-1] > costs[0]  # the doubles' capacity does shrink with the SLO: this can fail


def test_refinement_tightens_what_failed():
    calls: list = []
    backend = D.backend(calls)
    real = backend.simulate_fleet
    state = {"n": 0}

    def flaky(profile, gpu, tp, workload, **kw):
        out = real(profile, gpu, tp, workload, **kw)
        state["n"] += 1
        if state["n"] == 1:  # the first verification misses the SLO everywhere
            out.records.first_token_at = out.records.arrival_at + 10.0
        return out

    backend.simulate_fleet = flaky
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    result, _ = plan(profile, backend=backend, use_cache=False, workload=_steps([4.0] * 3))
    assert len(result.rounds) == 2
    assert result.rounds[0].tightened and not result.rounds[0].verified
    assert result.verified and result.rounds[1].verified


def test_a_flex_miss_tightens_every_flex_pool():
    """Sparse bursts served by flex workers; the first verification misses everywhere. The flex
    pools the plan did not use take the mildest step too (the same cold starts in the same
    bursts), so the next round cannot move to an untried flex pool with the same blind spot."""
    backend = D.backend()
    real = backend.simulate_fleet
    state = {"n": 0}

    def flaky(profile, gpu, tp, workload, **kw):
        out = real(profile, gpu, tp, workload, **kw)
        state["n"] += 1
        if state["n"] == 1:
            out.records.first_token_at = out.records.arrival_at + 10.0
        return out

    backend.simulate_fleet = flaky
    t = 1800.0 + np.arange(480) / 8.0
    wl = Workload(t, np.full(480, 500), np.full(480, 100), 3600.0)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, optimizer__min_replicas=0,
                        candidates={"gpus": ["small", "big"], "tensor_parallel_sizes": [1, 2], "billing": ["serverless"]},
                        slo={"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.5})
    result, _ = plan(profile, backend=backend, use_cache=False, workload=wl)
    first = result.rounds[0]
    assert not first.verified and first.plan.count("serverless") < 4, first.plan  # not every flex pool tried
    assert set(first.tightened) == {f"{g}-tp{tp}-flex" for g in ("small", "big") for tp in (1, 2)}, first.tightened
    assert set(first.tightened.values()) == {0.7}  # 0% attainment: the large step, shared


def test_repricing_a_flex_pool_prices_the_untried_ones_at_the_mildest_ratio(monkeypatch):
    """A verified round whose flex workers billed 2x and 3x the MILP's estimate: those pools are
    priced at their ratios, the flex pools no round simulated at the mildest (2x), so the next
    round cannot move to a flex pool that only looks cheaper; a second such round (3x what it was
    priced at) prices the still untried ones up again (6x)."""
    factors_seen: list[dict] = []
    real_inputs = S._milp_inputs

    def spy(world, factors, backend, price_factors=None):
        factors_seen.append(dict(price_factors or {}))
        return real_inputs(world, factors, backend, price_factors)

    results: list = []
    real_ratios = S._flex_cost_ratios

    def ratios(result, run):
        out = real_ratios(result, run)
        if result not in results:
            results.append(result)
        i = results.index(result)
        if i == 0:
            return {name: 2.0 + k for k, name in enumerate(sorted(out))}
        return {name: 3.0 for name in out} if i == 1 else out

    monkeypatch.setattr(S, "_milp_inputs", spy)
    monkeypatch.setattr(S, "_flex_cost_ratios", ratios)
    t = 1800.0 + np.arange(480) / 8.0
    wl = Workload(t, np.full(480, 500), np.full(480, 100), 3600.0)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, optimizer__min_replicas=0,
                        candidates={"gpus": ["small", "big"], "tensor_parallel_sizes": [1, 2], "billing": ["serverless"]},
                        slo={"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.5})
    result, _ = plan(profile, backend=D.backend(), use_cache=False, workload=wl)
    repriced = result.rounds[0].repriced
    assert repriced and result.rounds[0].verified, result.rounds[0]
    flex = {f"{g}-tp{tp}-flex" for g in ("small", "big") for tp in (1, 2)}
    second, third = [f for f in factors_seen if f][:2]  # the next rounds of the search that repriced
    assert {k for k in second if k in flex} == flex
    assert all(second[k] == repriced[k] for k in repriced)
    untried = flex - set(repriced)
    assert untried and all(second[k] == 2.0 for k in untried)
    still_untried = untried - set(result.rounds[1].repriced)
    assert still_untried and all(third[k] == 6.0 for k in still_untried)


def test_an_unchanged_endpoint_is_not_simulated_again():
    """verify_many(reuse=True) of the same plan twice: the second takes the first's simulations."""
    calls: list = []
    backend = D.backend(calls)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    wl = _steps([4.0] * 3)
    world = _prepare(profile, wl, 0, 1, capacity.CapacityCache(None), backend)
    inputs = _milp_inputs(world, {}, backend)
    result = solve_for(world, inputs)
    entries = _entries(result, inputs, world)
    first = verify_many(world, backend, [(inputs, result, entries, None, None)], reuse=True)
    n = len(calls)
    again = verify_many(world, backend, [(inputs, result, entries, None, None)], reuse=True)
    assert n > 0 and len(calls) == n
    assert again[0][0] == first[0][0]
    verify_many(world, backend, [(inputs, result, entries, None, None)])  # without reuse: simulated
    assert len(calls) == 2 * n


def test_measured_capacities_skip_simulation():
    capacity = {
        "source": "test bench",
        "entries": [
            {"gpu": "small", "usd_per_hour": 0.5,
             "buckets": [{"prompt_tokens": [1, 1000], "output_tokens": [1, 500], "share": 1.0, "max_requests_per_second": 2.0}]},
            {"gpu": "big", "usd_per_hour": 1.2,
             "buckets": [{"prompt_tokens": [1, 1000], "output_tokens": [1, 500], "share": 1.0, "max_requests_per_second": 6.0}]},
        ],
    }
    backend = D.backend()
    backend.capacities = lambda *a, **k: pytest.fail("measured capacities must not be simulated")
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, capacity=capacity,
                        candidates={"gpus": ["small", "big"], "billing": ["pod"]})
    result, _ = plan(profile, backend=backend, use_cache=False, workload=_steps([5.0] * 3))
    assert [c["source"] for c in result.capacities] == ["measured", "measured"]
    assert {(e.gpu, e.count) for e in result.plan} == {("big", 1)}
    assert any("test bench" in a for a in result.assumptions)


def test_no_candidate_fits_is_explained():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, candidates={"gpus": ["huge"]})
    with pytest.raises(PlannerError, match="quantize"):
        plan(profile, backend=D.backend(), use_cache=False, workload=_steps([1.0]))


def test_budget_too_small_is_explained():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, optimizer__budget_usd_per_month=10.0)
    with pytest.raises(PlannerError, match="budget"):
        plan(profile, backend=D.backend(), use_cache=False, workload=_steps([4.0]))


def _recording_backend():
    """The doubles, with the real up-front name check, recording every candidate check."""
    from planner.optimize.backend import check_names

    checked = []
    be = D.backend()
    inner = be.check_candidate
    be.check_candidate = lambda *a: checked.append(a[1:3]) or inner(*a)
    be.check_names = check_names
    return be, checked


def test_unknown_candidate_gpu_is_refused_once_up_front():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0},
                        candidates={"gpus": ["l40s", "h100-sxx", "L40S"], "tensor_parallel_sizes": [1, 2]})
    be, checked = _recording_backend()
    with pytest.raises(PlannerError) as err:
        plan(profile, backend=be, use_cache=False, workload=_steps([1.0]))
    msg = str(err.value)
    assert msg.startswith("candidates.gpus: unknown GPU 'h100-sxx'") and "did you mean h100-sxm" in msg
    assert "\n" not in msg and msg.count("unknown GPU") == 1 and "see `planner catalog`" in msg
    assert checked == []  # refused before any capacity check


def test_unknown_model_is_one_message_not_one_per_candidate():
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, model={"name": "llama-9"},
                        candidates={"gpus": ["l40s", "h100-sxm", "l4"], "tensor_parallel_sizes": [1, 2]})
    be, checked = _recording_backend()
    with pytest.raises(PlannerError) as err:
        plan(profile, backend=be, use_cache=False, workload=_steps([1.0]))
    msg = str(err.value)
    assert msg.startswith("model.name: unknown model 'llama-9'") and msg.count("llama-9") == 1
    assert checked == []


def test_known_names_pass_the_up_front_check():
    from planner.optimize.backend import check_names

    check_names(D.profile({"process": "poisson", "rate_per_s": 1.0},
                          candidates={"gpus": ["l40s", "H100-SXM"], "tensor_parallel_sizes": [1]}))


def test_cache_dir_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    with pytest.raises(PlannerError, match="is a file, not a folder"):
        plan(profile, backend=D.backend(), cache_dir=blocker / "cache", workload=_steps([1.0]))
    # Without the cache the folder does not matter.
    result, _ = plan(profile, backend=D.backend(), cache_dir=blocker / "cache", use_cache=False, workload=_steps([1.0]))
    assert result.plan


def _eff(gpu, name, value, source, about=None):
    from planner.assumption import Assumption

    return Assumption(topic="efficiency", gpu=gpu, name=name, value=value, source=source,
                      concerns=about if about is not None else [(gpu, "*")])


def test_efficiency_assumptions_collapse_to_one_line_per_gpu():
    from planner.assumption import Assumption, render_lines

    rule = "a user's calibration (estimated)"
    host = "setting (estimated)"
    items = [Assumption(topic="pod_price", name="pod price", gpu="h100-sxm", value=3.99, unit="USD per GPU-hour",
                        source="runpod")]
    for gpu, scale in (("h100-sxm", 1.1), ("l4", 1.1), ("mi300x", 1.3)):
        items += [Assumption(topic="gpu_spec", gpu=gpu, name="ecc", source="unsourced"),
                  _eff(gpu, "gemm_scale", scale, rule),
                  _eff(gpu, "attention_scale", 0.9, rule),
                  _eff(gpu, "layer_fixed_s", 2.6e-05, rule),
                  _eff(gpu, "step_overhead_s", 0.0, host)]
    items.append(Assumption(topic="note", name="a month", source="730 h"))
    out = render_lines(items)
    assert out[0] == "h100-sxm: pod price $3.99 per GPU-hour: runpod" and out[-1] == "a month: 730 h"
    assert sum("ecc is estimated" in x for x in out) == 3  # other lines pass through
    eff = [x for x in out if "step-time efficiencies" in x]
    # h100-sxm and l4 have the same figures and source: one line; mi300x differs: its own line.
    assert eff == [
        f"h100-sxm, l4: step-time efficiencies: GEMM time scale 1.1, attention time scale 0.9, per-layer 26 us; {rule}",
        f"mi300x: step-time efficiencies: GEMM time scale 1.3, attention time scale 0.9, per-layer 26 us; {rule}",
    ]
    assert [x for x in out if "overhead" in x] == [f"h100-sxm, l4, mi300x: step-time per-step overhead 0 ms; {host}"]
    assert len(out) == 1 + 3 + 2 + 1 + 1


def test_report_assumptions_name_estimated_step_times_once_per_gpu_shown():
    """The real catalog's items, through the planner: the measured GPU has none, the transferred
    one says its step times are estimated; the vLLM version, prefix caching and the latencies' scope once; no
    ../shared path."""
    from planner.assumption import render_lines
    from planner.capacity import assumptions as catalog_assumptions

    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    out = render_lines(catalog_assumptions(profile, {"h100-sxm": {"pod"}, "l4": {"pod"}}))
    assert len([x for x in out if x.startswith("l4: step times is estimated (estimated: transferred")]) == 1
    assert not [x for x in out if x.startswith("h100-sxm: step times")]
    assert sum("vLLM 0.24.0 kernel latencies" in x for x in out) == 1
    assert sum("prefix caching" in x and "not modelled" in x for x in out) == 1
    assert sum(x.startswith("latencies: ") and "tokenization" in x for x in out) == 1  # what TTFT leaves out
    assert all("shared/calibration" not in x for x in out)


def test_plan_assumptions_are_collapsed():

    def items(profile, uses):
        return [_eff(g, n, 0.5, "rule") for g in uses for n in ("gemm_scale", "attention_scale")]

    backend = D.backend()
    backend.assumptions = items
    profile = D.profile({"process": "poisson", "rate_per_s": 5.0})
    result, _ = plan(profile, backend=backend, use_cache=False, workload=_steps([9.0] * 6))
    eff = [a for a in result.assumptions if "efficienc" in a]
    assert len(eff) == 1 and eff[0].endswith(": step-time efficiencies: GEMM time scale 0.5, attention time scale 0.5; rule")
    # The JSON keeps the lines and adds the items they word.
    assert {i.name for i in result.assumption_items if i.topic == "efficiency"} == {"gemm_scale", "attention_scale"}


def test_grouped_lines_keep_their_items():
    from planner.assumption import Assumption, grouped

    month = Assumption(topic="note", name="month", source="730 h")
    a, b = _eff("a", "gemm_scale", 0.5, "rule"), _eff("b", "gemm_scale", 0.5, "rule")
    assert grouped([month, a, b]) == [
        ("month: 730 h", [month]),
        ("a, b: step-time efficiencies: GEMM time scale 0.5; rule", [a, b]),
    ]


def test_assumptions_split_into_the_plan_and_the_alternatives():
    """The plan's list holds what its (GPU, billing) pairs rely on; the alternatives' only the rest."""
    from planner.assumption import Assumption

    def items(profile, uses):
        out = [Assumption(topic="note", name="the month", source="730 h")]
        for g, modes in uses.items():
            out.append(_eff(g, "flop_fraction", 0.5, "rule"))
            out += [Assumption(topic="note", name=f"{g}", source=f"{m} price", concerns=[(g, m)]) for m in sorted(modes)]
        return out

    backend = D.backend()
    backend.assumptions = items
    profile = D.profile({"process": "poisson", "rate_per_s": 5.0})
    result, _ = plan(profile, backend=backend, use_cache=False, workload=_steps([9.0] * 6))
    plan_pairs = {(e.gpu, e.billing) for e in result.plan}
    alt_pairs = {(e.gpu, e.billing) for a in result.alternatives for e in a.plan} - plan_pairs
    assert alt_pairs  # the doubles' all-serverless alternative uses what the pods plan does not
    assert {a for a in result.assumptions if a.endswith(" price")} == {f"{g}: {m} price" for g, m in plan_pairs}
    assert {a for a in result.alternative_assumptions if a.endswith(" price")} == {f"{g}: {m} price" for g, m in alt_pairs}
    assert "the month: 730 h" in result.assumptions and not set(result.assumptions) & set(result.alternative_assumptions)
    # The efficiency line names every GPU shown and sits with the plan (it covers the plan's GPU).
    eff = [a for a in result.assumptions + result.alternative_assumptions if "efficienc" in a]
    assert len(eff) == 1 and eff[0] in result.assumptions
    shown = {g for g, _ in plan_pairs | alt_pairs}
    assert eff[0].startswith(", ".join(sorted(shown)) + ": ")
    flex = [a for a in result.alternative_assumptions if a.startswith("flex workers in the MILP")]
    assert flex and not any(e.billing == "serverless" for e in result.plan)


def test_describe_leaves_out_serverless_parts_that_are_zero():
    from planner.optimize.result import describe
    from planner.optimize.result import PlanEntry

    def entry(gpu, billing, count, tp=1, active=0, flex=0):
        return PlanEntry(gpu=gpu, tensor_parallel_size=tp, billing=billing, count=count, active_workers=active,
                         max_flex_workers=flex, gpus=count * tp, traffic_share=0.5, capacity_per_s={},
                         milp_cost_usd=1.0)

    assert describe([entry("l40s", "serverless", 1, active=1)]) == "l40s serverless (1 active)"
    assert describe([entry("l4", "serverless", 1, flex=1)]) == "l4 serverless (up to 1 flex)"
    assert describe([entry("h100-sxm", "pod", 2), entry("l4", "serverless", 4, tp=2, active=1, flex=3)]) == (
        "2 x h100-sxm pods + l4 (TP2) serverless (1 active, up to 3 flex)"
    )
    assert describe([]) == "nothing"
