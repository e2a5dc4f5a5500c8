"""Billing arithmetic: prices, cold starts and cost from worker spans, checked by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import billing
from planner.billing import (
    BILLING_DEFAULTS,
    SECONDS_PER_MONTH,
    billed_seconds,
    cold_start,
    cold_start_seconds,
    cost_of,
    resolve_prices,
    validate_settings,
)
from planner.errors import PlannerError


@dataclass
class Span:
    """Stand-in for planner.sim.WorkerSpan."""

    kind: str
    started_at: float
    ready_at: float
    stopped_at: float | None
    busy_s: float
    gpus: int = 1


# H100 SXM as FACTS.md §2 gives it: Runpod secure 3.49, community 2.69 USD/GPU-h (2026-09-25);
# serverless "80 GB PRO" tier flex 0.00116, active 0.00093 USD/s (2025-08-25).
H100 = {
    "id": "h100-sxm",
    "pod_prices": [
        {"provider": "Runpod", "cloud": "secure", "usd_per_hour": 3.49, "as_of": "2026-09-25", "source": "s1"},
        {"provider": "Runpod", "cloud": "community", "usd_per_hour": 2.69, "as_of": "2026-09-25", "source": "s1"},
        {"provider": "Runpod", "cloud": "secure", "usd_per_hour": 2.99, "as_of": "2025-01-01", "source": "old"},
    ],
    "serverless": {"provider": "Runpod", "tier": "80 GB PRO", "flex_usd_per_s": 0.00116,
                   "active_usd_per_s": 0.00093, "as_of": "2025-08-25", "source": "s2",
                   "ambiguous_note": None},
}
NO_SERVERLESS = {"id": "mi300x", "pod_prices": [], "serverless": None}


def test_resolve_prices_secure_by_default_newest_entry():
    prices = resolve_prices(H100)
    assert prices.pod_cloud == "secure"
    assert prices.pod_usd_per_gpu_hour == 3.49  # the newest secure entry, not the 2025 one
    assert prices.pod_price_as_of == "2026-09-25"
    assert prices.flex_usd_per_gpu_s == 0.00116
    assert prices.serverless_tier == "80 GB PRO"
    assert prices.pod_usd_per_hour(2) == pytest.approx(6.98)


def test_resolve_prices_community_and_overrides():
    prices = resolve_prices(H100, {"pod_cloud": "community"})
    assert prices.pod_usd_per_gpu_hour == 2.69
    overridden = resolve_prices(H100, None, [{"gpu": "h100-sxm", "pod_usd_per_hour": 2.0},
                                             {"gpu": "l4", "pod_usd_per_hour": 9.0}])
    assert overridden.pod_usd_per_gpu_hour == 2.0
    assert "override" in overridden.pod_price_label
    assert overridden.overridden == ["pod_usd_per_gpu_hour"]
    assert overridden.flex_usd_per_gpu_s == 0.00116  # untouched
    with pytest.raises(PlannerError, match="finite number"):
        resolve_prices(H100, None, [{"gpu": "h100-sxm", "flex_usd_per_s": -1.0}])


def test_other_providers_on_demand_price():
    gpu = dict(H100, pod_prices=H100["pod_prices"] + [
        {"provider": "lambda", "cloud": "on-demand", "usd_per_hour": 4.29, "as_of": "2026-09-25", "source": "l"}])
    prices = resolve_prices(gpu, {"pod_provider": "lambda"})
    assert prices.pod_usd_per_gpu_hour == 4.29 and prices.pod_price_label == "lambda on-demand"


def test_missing_prices_raise_only_when_needed():
    prices = resolve_prices(NO_SERVERLESS)
    assert prices.flex_usd_per_gpu_s is None
    with pytest.raises(PlannerError, match="no serverless price"):
        prices.flex_usd_per_s()
    with pytest.raises(PlannerError, match="pod price"):
        prices.pod_usd_per_hour()
    with pytest.raises(PlannerError, match="no serverless price"):
        cost_of([Span("flex", 0, 1, 10, 5)], prices, 3600)


def test_cold_start_formula_and_cached_shortcut():
    weights = 16_060_522_496  # Llama-3.1-8B bf16
    parts = cold_start(weights)
    expected = (BILLING_DEFAULTS["container_start_seconds"].value
                + weights / BILLING_DEFAULTS["model_load_bytes_per_second"].value
                + BILLING_DEFAULTS["engine_warmup_seconds"].value)
    assert parts.total_s == pytest.approx(expected)
    assert parts.weights_load_s == pytest.approx(weights / 0.89e9)
    custom = {"container_start_seconds": 2.0, "model_load_bytes_per_second": 1e9, "engine_warmup_seconds": 10.0}
    assert cold_start_seconds(4_000_000_000, custom) == pytest.approx(2 + 4 + 10)
    cached = {"cached_model": True, "cached_start_seconds": 3.5}
    assert cold_start_seconds(weights, cached) == 3.5
    # Bigger models start slower unless cached.
    assert cold_start_seconds(2 * weights) > cold_start_seconds(weights)


def test_billed_seconds_rounds_up():
    assert billed_seconds(2.3) == 3.0  # Runpod's documented example
    assert billed_seconds(3.0) == 3.0
    assert billed_seconds(3.0 + 1e-12) == 3.0  # float noise is not a second
    assert billed_seconds(0.0) == 0.0
    assert billed_seconds(61.0, 60.0) == 120.0


def test_one_request_every_ten_minutes_on_serverless():
    """Each request pays (cold start + service + idle timeout, rounded up) × flex rate."""
    prices = resolve_prices(H100)
    cold, service, idle = 87.04, 3.21, 5.0
    spans = [Span("flex", t, t + cold, t + cold + service + idle, service) for t in range(0, 3600, 600)]
    result = cost_of(spans, prices, 3600.0, output_tokens=6 * 200, num_requests=6)
    per_request = math.ceil(cold + service + idle) * 0.00116
    assert result.cost_usd == pytest.approx(6 * per_request)
    assert result.cold_starts == 6
    assert result.cold_start_seconds == pytest.approx(6 * cold)
    assert result.busy_gpu_seconds == pytest.approx(6 * service)
    assert result.billed_gpu_seconds == pytest.approx(6 * math.ceil(cold + service + idle))
    assert result.idle_usd == pytest.approx(result.cost_usd - 6 * service * 0.00116)
    assert result.cost_per_1000_requests_usd == pytest.approx(result.cost_usd / 6 * 1000)
    assert result.cost_per_million_output_tokens_usd == pytest.approx(result.cost_usd / 1200 * 1e6)
    assert result.cost_per_month_usd == pytest.approx(result.cost_usd * 730)


@pytest.mark.parametrize("busy_s", [0.0, 1800.0, 7200.0])
def test_pod_costs_hours_times_rate_whatever_the_load(busy_s):
    prices = resolve_prices(H100)
    result = cost_of([Span("pod", 0.0, 0.0, 7200.0, busy_s, gpus=2)], prices, 7200.0)
    assert result.cost_usd == pytest.approx(2 * 3.49 * 2)  # 2 h × 3.49 USD/GPU-h × 2 GPUs
    assert result.utilization == pytest.approx(busy_s / 7200.0)
    assert result.cold_starts == 0


def test_pod_granularity_and_open_spans():
    prices = resolve_prices(H100)
    hourly = cost_of([Span("pod", 0.0, 0.0, 3601.0, 0.0)], prices, 7200.0, pod_billing_granularity_s=3600.0)
    assert hourly.cost_usd == pytest.approx(2 * 3.49)
    # A run draining past the horizon: the pod is counted for the horizon (the monthly figure
    # repeats the horizon); a flex worker is billed in full.
    drained = cost_of([Span("pod", 0.0, 0.0, 3700.0, 0.0), Span("flex", 3500.0, 3510.0, 3700.0, 50.0)],
                      prices, 3600.0)
    assert drained.cost_usd == pytest.approx(3.49 + 200 * 0.00116)
    assert drained.cost_per_month_usd == pytest.approx(drained.cost_usd * 730)
    open_span = cost_of([Span("pod", 0.0, 0.0, None, 0.0)], prices, 1800.0)
    assert open_span.cost_usd == pytest.approx(3.49 / 2)


def test_active_workers_billed_around_the_clock_at_active_rate():
    prices = resolve_prices(H100)
    result = cost_of([Span("active", 0.0, 0.0, 3600.0, 10.0)], prices, 3600.0)
    assert result.cost_usd == pytest.approx(3600 * 0.00093)
    assert result.cold_starts == 0


def test_validate_settings_rejects_bad_endpoints():
    validate_settings(None)
    with pytest.raises(PlannerError, match="idle_timeout_seconds"):
        validate_settings({"idle_timeout_seconds": -1.0})
    with pytest.raises(PlannerError, match="below active workers"):
        validate_settings({"active_workers": 4, "max_workers": 3})
    with pytest.raises(PlannerError, match="scaler"):
        validate_settings({"scaler": "cpu"})
    with pytest.raises(PlannerError, match="scaler_value"):
        validate_settings({"scaler_value": 0})


def test_profile_billing_section_is_read_nested():
    from planner.inputs.profile import BillingSection

    section = BillingSection.model_validate({
        "pod_cloud": "community",
        "serverless": {"idle_timeout_seconds": 7, "scaler": "request-count",
                       "cold_start": {"container_start_seconds": 1.0, "model_load_bytes_per_second": 2e9,
                                      "engine_warmup_seconds": 3.0}},
    })
    assert billing.setting(section, "idle_timeout_seconds") == 7
    assert billing.setting(section, "scaler_value") == 1.0  # request-count default
    assert billing.setting(BillingSection(), "scaler_value") == 4.0  # queue-delay default
    assert billing.setting(BillingSection(), "engine_warmup_seconds") == 64.0  # sourced default
    assert cold_start_seconds(4_000_000_000, section) == pytest.approx(1 + 2 + 3)
    assert resolve_prices(H100, section).pod_usd_per_gpu_hour == 2.69
    validate_settings(section)
    text = "\n".join(billing.assumptions(section))
    assert "container_start_seconds" not in text  # the user's figures are not assumptions
    assert "pod_provisioning_delay_seconds" in text and "estimated" in text


def test_assumptions_list_estimates_unless_user_set_them():
    lines = billing.assumptions(None, resolve_prices(H100))
    text = "\n".join(lines)
    assert "container_start_seconds" in text and "estimated" in text
    assert "730-hour month" in text
    assert "$3.49 per GPU-hour" in text
    cached = "\n".join(billing.assumptions({"cached_model": True}))
    assert "cached_start_seconds" in cached and "container_start_seconds" not in cached
    pods_only = "\n".join(billing.assumptions(None, resolve_prices(H100), serverless=False))
    assert "engine_warmup" not in pods_only and "serverless tier" not in pods_only
    serverless_only = "\n".join(billing.assumptions(None, resolve_prices(H100), pods=False))
    assert "pod price" not in serverless_only and "pod_provisioning_delay" not in serverless_only
    assert "serverless tier" in serverless_only and "engine_warmup" in serverless_only


def _line(lines, name):
    return next(line for line in lines if name in line)


def test_cold_start_defaults_are_estimates_off_their_measured_model_and_gpu():
    """The load rate and warm-up were measured once (Llama-3.1-8B bf16 on L40S): elsewhere they are estimates."""
    l40s = {**H100, "id": "l40s"}
    here = billing.assumptions(None, resolve_prices(l40s), model="llama-3.1-8b")
    for name in ("model_load_bytes_per_second", "engine_warmup_seconds"):
        assert "measured for llama-3.1-8b on l40s, this run's model and GPU" in _line(here, name)
        assert "estimated" not in _line(here, name)
    for model, gpu in (("qwen3-32b", l40s), ("llama-3.1-8b", H100)):
        lines = billing.assumptions(None, resolve_prices(gpu), model=model)
        load, warmup = _line(lines, "model_load_bytes_per_second"), _line(lines, "engine_warmup_seconds")
        assert load.startswith("billing.serverless.cold_start.model_load_bytes_per_second = 8.9e+08 (estimated for "
                               f"{model} on {gpu['id']}: measured for llama-3.1-8b on l40s only")
        assert "host's storage" in load
        assert f"estimated for {model} on {gpu['id']}" in warmup and "model size and CUDA graph capture" in warmup
    # Several GPUs: one line naming them, the measured GPU first.
    many = billing.assumptions(None, model="llama-3.1-8b", gpu_ids=["h100-sxm", "l40s", "l4"])
    load = _line(many, "model_load_bytes_per_second")
    assert "measured for llama-3.1-8b on l40s (Tensorfuse" in load
    assert load.endswith("applied as an estimate to h100-sxm, l4: the load rate is a property of the host's storage, not of the model)")
    others = _line(billing.assumptions(None, model="llama-3.1-8b", gpu_ids=["h100-sxm", "l4"]), "engine_warmup_seconds")
    assert "estimated for llama-3.1-8b on h100-sxm, l4: measured for llama-3.1-8b on l40s only" in others
    # Unknown model or GPU: an estimate too, never called measured for this run.
    unknown = billing.assumptions(None)
    assert "estimated for this model on this GPU" in _line(unknown, "engine_warmup_seconds")
    # The defaults themselves are unchanged.
    assert billing.default("engine_warmup_seconds") == 64.0
    assert billing.default("model_load_bytes_per_second") == 0.89e9


@settings(max_examples=60, deadline=None)
@given(
    durations=st.lists(st.floats(min_value=0.0, max_value=5000.0), min_size=1, max_size=8),
    busy_frac=st.floats(min_value=0.0, max_value=1.0),
)
def test_cost_properties(durations, busy_frac):
    """Cost is billed GPU-seconds × rate; busy never exceeds billed; idle + busy spend = cost."""
    prices = resolve_prices(H100)
    spans = [Span("flex", 0.0, min(d, 1.0), d, d * busy_frac) for d in durations]
    result = cost_of(spans, prices, 3600.0)
    assert result.cost_usd == pytest.approx(result.billed_gpu_seconds * 0.00116)
    assert result.busy_gpu_seconds <= result.billed_gpu_seconds + 1e-9
    assert result.idle_usd + result.busy_gpu_seconds * 0.00116 == pytest.approx(result.cost_usd)
    assert all(billed_seconds(d) - d < 1.0 and billed_seconds(d) >= d - 1e-9 for d in durations)
    assert result.cost_per_month_usd == pytest.approx(result.cost_usd * SECONDS_PER_MONTH / 3600.0)


def test_in_flight_share_is_documented_as_what_it_measures():
    """utilization/idle_usd keep their JSON names; their docs say what they count (any request in flight)."""
    from planner.billing import CostBreakdown

    fields = CostBreakdown.model_fields
    assert "in flight" in fields["utilization"].description and "max_num_seqs" in fields["utilization"].description
    assert "no request in flight" in fields["idle_usd"].description
    assert "in flight" in fields["busy_gpu_seconds"].description
